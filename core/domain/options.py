"""The audio options a user chooses for a conversion, their ranges and their parser."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from core.domain.errors import InvalidInput
from core.domain.values import ascii_int

BITRATES = ("128k", "192k", "256k", "320k")
DEFAULT_BITRATE = "192k"
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
LOUDNESS_RANGE = (-30.0, -5.0)  # LUFS
TRUE_PEAK_DBTP = -1.0
TAG_MAX_CHARS = 200
COVERS = ("none", "frame")
# Numbers from users are plain ASCII digits: Python's \d, int() and float() also take
# Unicode digits (٣, ３), and int() takes '+5' and '1_000'.
_TIMESTAMP = re.compile(r"(\d{1,2}):([0-5]\d):([0-5]\d(?:\.\d{1,3})?)", re.ASCII)
_SECONDS = re.compile(r"\d{1,6}(?:\.\d{1,3})?", re.ASCII)


def _int_in(value: str, allowed: tuple[int, ...] | range) -> int | None:
    number = ascii_int(value.strip(), 6)
    return number if number is not None and number in allowed else None


def parse_time(value: str) -> float | None:
    """Seconds from `12.5` or `HH:MM:SS(.mmm)`; None when it is neither."""
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    found = _TIMESTAMP.fullmatch(text)
    if found is None:
        return None
    h, m, s = found.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


@dataclass(frozen=True)
class AudioOptions:
    """What a user chose for one conversion, validated. `bitrate` and `quality` exclude each
    other; with neither, the MP3 is encoded at DEFAULT_BITRATE (or copied, see `needs_encode`)."""

    bitrate: str | None = None
    quality: int | None = None  # LAME -V: 0 best .. 9
    sample_rate: int | None = None
    channels: int | None = None
    start: float | None = None  # seconds into the source
    end: float | None = None
    loudness: float | None = None  # target integrated loudness, LUFS
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    cover: str = "none"
    track: int = 0  # audio tracks counted from 0

    NAMES = (
        "bitrate",
        "quality",
        "sample_rate",
        "channels",
        "start",
        "end",
        "loudness",
        "title",
        "artist",
        "album",
        "cover",
        "track",
    )

    @classmethod
    def parse(cls, values: Mapping[str, str | None]) -> "AudioOptions":
        """Options from text fields (form, query or tus metadata); unknown names are ignored.
        InvalidInput lists every bad field with its message."""
        errors: dict[str, list[str]] = {}
        chosen: dict[str, Any] = {}

        def bad(name: str, message: str) -> None:
            errors.setdefault(name, []).append(message)

        for name in cls.NAMES:
            raw = values.get(name)
            if raw is None or raw == "":  # an empty form field is an option not given
                continue
            value = _parse_one(name, raw)
            if value is None:
                bad(name, _MESSAGES[name])
            else:
                chosen[name] = value
        if "bitrate" in chosen and "quality" in chosen:
            bad("quality", "give either quality (VBR) or bitrate (CBR), not both")
        start, end = chosen.get("start"), chosen.get("end")
        if start is not None and end is not None and start >= end:
            bad("end", "must be after start")
        if errors:
            raise InvalidInput("invalid options: " + ", ".join(sorted(errors)), {"fields": errors})
        return cls(**chosen)

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any] | None) -> "AudioOptions":
        """Options as `to_dict` stored them."""
        known = {k: v for k, v in (stored or {}).items() if k in cls.NAMES}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        """Normalised: numbers as numbers, times in seconds, cover and track filled in, options
        not given left out (no bitrate means the default, or a copy of an MP3 track)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def titled(self, filename: str) -> "AudioOptions":
        """The title defaults to the upload's file name without its extension."""
        if self.title is not None:
            return self
        stem = filename.rsplit(".", 1)[0] if "." in filename.strip(".") else filename
        return replace(self, title=stem[:TAG_MAX_CHARS] or None)

    @property
    def needs_encode(self) -> bool:
        """True when an option changes the audio itself (an MP3 track could not be copied)."""
        return any(
            v is not None
            for v in (
                self.bitrate,
                self.quality,
                self.sample_rate,
                self.channels,
                self.start,
                self.end,
                self.loudness,
            )
        )

    @property
    def label(self) -> str:
        """The bitrate column: the CBR rate, or V0..V9 for VBR."""
        return f"V{self.quality}" if self.quality is not None else (self.bitrate or DEFAULT_BITRATE)


_MESSAGES = {
    "bitrate": f"one of {', '.join(BITRATES)}",
    "quality": "an integer from 0 (best) to 9",
    "sample_rate": f"one of {', '.join(str(r) for r in SAMPLE_RATES)}",
    "channels": "1 (mono) or 2 (stereo)",
    "start": "seconds (e.g. 12.5) or HH:MM:SS(.mmm)",
    "end": "seconds (e.g. 12.5) or HH:MM:SS(.mmm)",
    "loudness": f"a number of LUFS from {LOUDNESS_RANGE[0]:g} to {LOUDNESS_RANGE[1]:g}",
    "title": f"text of at most {TAG_MAX_CHARS} characters",
    "artist": f"text of at most {TAG_MAX_CHARS} characters",
    "album": f"text of at most {TAG_MAX_CHARS} characters",
    "cover": f"one of {', '.join(COVERS)}",
    "track": "an audio track number, counting from 0",
}


def _parse_one(name: str, raw: str) -> Any:
    """One option's value, or None when invalid."""
    if not isinstance(raw, str):
        return None
    if name == "bitrate":
        return raw if raw in BITRATES else None
    if name == "quality":
        return _int_in(raw, range(10))
    if name == "sample_rate":
        return _int_in(raw, SAMPLE_RATES)
    if name == "channels":
        return _int_in(raw, (1, 2))
    if name == "track":
        return _int_in(raw, range(64))
    if name in ("start", "end"):
        return parse_time(raw)
    if name == "loudness":
        if not re.fullmatch(r"\s*-?\d{1,3}(?:\.\d{1,2})?\s*", raw, re.ASCII):
            return None
        lufs = float(raw)
        low, high = LOUDNESS_RANGE
        return lufs if math.isfinite(lufs) and low <= lufs <= high else None
    if name == "cover":
        return raw if raw in COVERS else None
    # title, artist, album: printable UTF-8 text
    text = "".join(ch for ch in raw if ch.isprintable()).strip()
    if len(raw) > TAG_MAX_CHARS or not text:
        return None
    return text
