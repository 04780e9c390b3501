"""The upload options of the API as `--flags`, and the parsers the other flags use."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

# A copy of the server's options as its OpenAPI document describes them (one JSON Schema each),
# written by `python -m devtools.client_options`; a test fails while it differs from the server's.
COPY = "upload_options.json"
LIST_AT_MOST = 12  # an integer range this short is offered as choices
METAVARS = {"integer": "N", "number": "NUMBER", "time": "TIME", "text": "TEXT"}
TYPES: dict[str, Callable[[str], Any]] = {"integer": int, "number": float}
FIELD = "opt_"  # the prefix of the options' names in the parsed arguments


@dataclass(frozen=True)
class UploadOption:
    """A form field of `POST /upload`, offered as `--flag` on `vid2mp3 convert`."""

    field: str
    help: str
    choices: tuple[str, ...] | None = None
    type: Callable[[str], Any] = str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @classmethod
    def described(cls, name: str, schema: Mapping[str, Any]) -> "UploadOption":
        """The flag of an option as the API describes it (its JSON Schema)."""
        low, high = schema.get("minimum"), schema.get("maximum")
        choices = [str(value) for value in schema.get("enum", ())]
        short = schema["type"] == "integer" and low is not None and high is not None
        if not choices and short and high - low < LIST_AT_MOST:
            choices = [str(value) for value in range(low, high + 1)]
        default = schema.get("default")
        said = f" (default: {default})" if default is not None else ""
        help = (schema.get("description", "") + said).replace("%", "%%")  # argparse formats it
        if choices:
            return cls(name, help, choices=tuple(choices))
        metavar = schema.get("x-unit") or METAVARS.get(schema.get("x-kind", ""), "VALUE")
        return cls(name, help, type=TYPES.get(schema["type"], str), metavar=metavar)


def described_options(schemas: Mapping[str, Mapping[str, Any]]) -> tuple[UploadOption, ...]:
    return tuple(UploadOption.described(name, schema) for name, schema in schemas.items())


def _shipped() -> dict[str, dict[str, Any]]:
    text = resources.files("vid2mp3_client").joinpath(COPY).read_text(encoding="utf-8")
    return dict(json.loads(text))


# Every option the API's upload takes.
UPLOAD_OPTIONS: tuple[UploadOption, ...] = described_options(_shipped())


def add_upload_options(
    parser: argparse.ArgumentParser, options: tuple[UploadOption, ...] = UPLOAD_OPTIONS
) -> None:
    group = parser.add_argument_group("conversion options (sent with each upload)")
    for option in options:
        group.add_argument(
            option.flag,
            dest=f"{FIELD}{option.field}",
            type=option.type,
            choices=option.choices,
            metavar=option.metavar,
            help=option.help,
        )


def upload_fields(args: argparse.Namespace) -> dict[str, str]:
    """The form fields to send: only the options given on the command line."""
    return {
        name[len(FIELD) :]: str(value)
        for name, value in vars(args).items()
        if name.startswith(FIELD) and value is not None
    }


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> int:
    """'90' or '90s' -> 90, '15m' -> 900, '1h' -> 3600, '1h30m' -> 5400, '7d' -> 604800."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value)
    elif value and _DURATION.sub("", value) == "":
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))
    else:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds or a number with s, m, h, d or w, "
            "e.g. 90s, 15m, 1h, 1h30m, 7d"
        )
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the duration must be positive")
    return seconds


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value
