"""No working secret is committed: not in manifests, compose, env files, docs or the image."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A setting being given a value: `NAME=value`, `NAME: value` or `- NAME=value`.
ASSIGNMENT = re.compile(
    r"^\s*-?\s*[A-Z_]*(SECRET|PASSWORD|BASIC_AUTH)[A-Z_]*\s*[:=]\s*[\"']?([^\"'#]*)"
)
PLACEHOLDER = re.compile(r"^((admin:)?(REPLACE_ME\S*)?|\$\{.*\}|\$\S*)$")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def tracked_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def test_no_private_keys_anywhere():
    for path in tracked_files():
        assert not PRIVATE_KEY.search(path.read_text(errors="ignore")), path


def test_deployment_files_carry_placeholders_only():
    suspects = []
    for path in tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("tests/") or path.suffix in (".py", ".json", ".md"):
            continue  # code reads secrets, tests use test-only ones, docs show commands
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            match = ASSIGNMENT.match(line)
            if match and not PLACEHOLDER.match(match.group(2).strip()):
                suspects.append(f"{rel}:{number}: {line.strip()}")
    assert not suspects, "values that look like real secrets:\n" + "\n".join(suspects)
