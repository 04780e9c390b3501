"""Writes the CLI's copy of the audio options: `python -m devtools.client_options`.

The client is a separate distribution that imports nothing of the server, so it ships the
options as the API documents them (`api/option_schemas.py`, derived from `OPTIONS` in
core/domain/options.py) in a JSON file; tests/unit/test_option_descriptions.py fails while the
copy differs from what this writes. `--check` exits 1 instead of writing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from api.option_schemas import option_schemas
from core.domain.options import OPTIONS, Option
from devtools.processes import ROOT

COPY = ROOT / "client" / "vid2mp3_client" / "upload_options.json"
HOW = "python -m devtools.client_options"


def render(options: tuple[Option, ...] = OPTIONS) -> str:
    """The copy's text: each option's schema by name, in the description's order."""
    return json.dumps(option_schemas(options), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str], copy: Path = COPY) -> int:
    text = render()
    if "--check" in argv:
        current = copy.read_text(encoding="utf-8") if copy.exists() else ""
        if current != text:
            print(f"{copy} is out of step with the options: run `{HOW}`", file=sys.stderr)
            return 1
        return 0
    copy.write_text(text, encoding="utf-8")
    print(f"wrote {copy}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
