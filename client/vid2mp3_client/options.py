"""The upload options of the API, one row each, and the parsers the flags use."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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


# Every option the API's upload takes; adding one to the API is adding one row here.
UPLOAD_OPTIONS: tuple[UploadOption, ...] = (
    UploadOption(
        "bitrate",
        "constant MP3 bitrate (the server's default: 192k)",
        choices=("128k", "192k", "256k", "320k"),
    ),
    UploadOption(
        "quality",
        "VBR quality instead of a bitrate: 0 (best) to 9",
        choices=tuple(str(q) for q in range(10)),
    ),
    UploadOption(
        "sample_rate",
        "sample rate in Hz (default: the source's)",
        choices=("8000", "11025", "12000", "16000", "22050", "24000", "32000", "44100", "48000"),
    ),
    UploadOption("channels", "1 (mono) or 2 (stereo) (default: the source's)", choices=("1", "2")),
    UploadOption("start", "keep from here: seconds or HH:MM:SS(.mmm)", metavar="TIME"),
    UploadOption("end", "keep up to here: seconds or HH:MM:SS(.mmm)", metavar="TIME"),
    UploadOption(
        "loudness",
        "normalise to this loudness in LUFS, -30 to -5 (e.g. -16)",
        type=float,
        metavar="LUFS",
    ),
    UploadOption("title", "ID3 title (default: the file name without extension)"),
    UploadOption("artist", "ID3 artist"),
    UploadOption("album", "ID3 album"),
    UploadOption(
        "cover",
        "frame: a still from the video as cover art (default: none)",
        choices=("none", "frame"),
    ),
    UploadOption("track", "audio track to convert, counting from 0", type=int, metavar="N"),
)


def add_upload_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("conversion options (sent with each upload)")
    for option in UPLOAD_OPTIONS:
        group.add_argument(
            option.flag,
            dest=f"opt_{option.field}",
            type=option.type,
            choices=option.choices,
            metavar=option.metavar,
            help=option.help,
        )


def upload_fields(args: argparse.Namespace) -> dict[str, str]:
    """The form fields to send: only the options given on the command line."""
    fields = {}
    for option in UPLOAD_OPTIONS:
        value = getattr(args, f"opt_{option.field}", None)
        if value is not None:
            fields[option.field] = str(value)
    return fields


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
