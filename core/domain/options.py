"""The audio options a user chooses for a conversion, each described once (`OPTIONS`), and
the parser derived from that description. The API's schemas (`api/option_schemas.py`), the
CLI's flags (a generated copy) and the page's form (read from /openapi.json) derive from it too."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Mapping

from core.domain.errors import InvalidInput
from core.domain.values import ascii_int

# How a value is written and checked: one of a list of words, an integer (from a list or a
# range), a decimal number in a range, a time into the source, or free text.
Kind = Literal["choice", "integer", "number", "time", "text"]
Value = str | int | float

BITRATES = ("128k", "192k", "256k", "320k")
DEFAULT_BITRATE = "192k"
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates Opus encodes at
TRUE_PEAK_DBTP = -1.0  # the ceiling of a loudness-normalised MP3
TAG_MAX_CHARS = 200
COVERS = ("none", "frame")
# Numbers from users are plain ASCII digits: Python's \d, int() and float() also take
# Unicode digits (٣, ３), and int() takes '+5' and '1_000'.
SECONDS = r"\d{1,6}(\.\d{1,3})?"
CLOCK = r"\d{1,2}:[0-5]\d:[0-5]\d(\.\d{1,3})?"
TIME_PATTERN = f"^({SECONDS}|{CLOCK})$"  # a time as the API documents it
_NUMBER = re.compile(r"\s*-?\d{1,3}(?:\.\d{1,2})?\s*", re.ASCII)


@dataclass(frozen=True)
class AudioFormat:
    """An output format: its file, the codec a track is copied from when no option changes
    the audio, and the words for it (what each is for: docs/audio-options.md#formats)."""

    name: str
    extension: str
    content_type: str
    copies: str  # the codec (as ffmpeg names it) whose tracks are copied, not encoded
    words: str  # a form's words for it
    noun: str  # what a message calls the output: "the MP3 is not ready"
    default_bitrate: str | None = None  # with no bitrate given; None: the format has none
    sample_rates: tuple[int, ...] = SAMPLE_RATES


AUDIO_FORMATS: tuple[AudioFormat, ...] = (
    AudioFormat(
        "mp3",
        "mp3",
        "audio/mpeg",
        "mp3",
        "MP3",
        "MP3",
        default_bitrate=DEFAULT_BITRATE,
    ),
    AudioFormat(
        "m4a",
        "m4a",
        "audio/mp4",
        "aac",
        "M4A (AAC)",
        "M4A",
        default_bitrate=DEFAULT_BITRATE,
    ),
    AudioFormat(
        "opus",
        "opus",
        "audio/ogg",
        "opus",
        "Opus",
        "Opus file",
        default_bitrate="128k",
        sample_rates=OPUS_SAMPLE_RATES,
    ),
    AudioFormat(
        "flac",
        "flac",
        "audio/flac",
        "flac",
        "FLAC (lossless)",
        "FLAC",
    ),
    AudioFormat(
        "wav",
        "wav",
        "audio/wav",
        "pcm_s16le",
        "WAV (uncompressed)",
        "WAV",
    ),
)
FORMATS = tuple(fmt.name for fmt in AUDIO_FORMATS)  # the output formats
LOSSY = ("mp3", "m4a", "opus")


def audio_format(name: str) -> AudioFormat:
    """The format of that name (KeyError when there is none)."""
    return {fmt.name: fmt for fmt in AUDIO_FORMATS}[name]


def parse_time(value: str) -> float | None:
    """Seconds from `12.5` or `HH:MM:SS(.mmm)`; None when it is neither."""
    text = value.strip()
    if re.fullmatch(SECONDS, text, re.ASCII):
        return float(text)
    if not re.fullmatch(CLOCK, text, re.ASCII):
        return None
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


@dataclass(frozen=True)
class Option:
    """One audio option, described once: how it is written and checked, what it does when it is
    left out, the words a form shows for it, and the output formats it applies to."""

    name: str
    kind: Kind
    label: str  # a form's label
    help: str  # one line (CommonMark): the API's description, `--help`, a form's hint
    choices: tuple[Value, ...] = ()
    minimum: int | float | None = None
    maximum: int | float | None = None
    max_length: int | None = None  # text: characters as sent
    message: str = ""  # what a valid value is, as a 422 says it; empty: said from the kind
    default: Value | None = None  # the value a conversion uses when the option is not given
    absent: str | None = None  # a form's words for leaving it out; None: it starts at the default
    words: Mapping[Value, str] = field(default_factory=dict)  # a form's words for some choices
    unit: str | None = None
    # Given, an MP3 track may still be copied as it is (tags, a cover, which track); the default
    # is the safe one: an option changes the audio, so the track is encoded.
    keeps_audio: bool = False
    formats: tuple[str, ...] = FORMATS  # the output formats it applies to

    def __post_init__(self) -> None:
        if not self.message:
            object.__setattr__(self, "message", self._said())

    def _said(self) -> str:
        if self.choices:
            return f"one of {', '.join(str(choice) for choice in self.choices)}"
        if self.kind == "time":
            return "seconds (e.g. 12.5) or HH:MM:SS(.mmm)"
        if self.kind == "text":
            return f"text of at most {self.max_length} characters"
        if self.kind == "number":
            return f"a number of {self.unit} from {self.minimum:g} to {self.maximum:g}"
        return f"an integer from {self.minimum} to {self.maximum}"

    def parse(self, raw: str) -> Value | None:
        """The value written in raw (form, query or tus metadata text), or None when it is not
        one this option allows."""
        if not isinstance(raw, str):
            return None
        value = self._read(raw)
        return value if value is not None and self.allows(value) else None

    def _read(self, raw: str) -> Value | None:
        if self.kind == "choice":
            return raw
        if self.kind == "integer":
            return ascii_int(raw.strip(), 6)
        if self.kind == "number":
            return float(raw) if _NUMBER.fullmatch(raw) else None
        if self.kind == "time":
            return parse_time(raw)
        # text: printable UTF-8, at most max_length characters as sent
        text = "".join(ch for ch in raw if ch.isprintable()).strip()
        too_long = self.max_length is not None and len(raw) > self.max_length
        return None if too_long or not text else text

    def allows(self, value: object) -> bool:
        """True when value (parsed, or built in code) is one this option takes."""
        if self.kind in ("choice", "text"):
            if not isinstance(value, str):
                return False
            if self.kind == "choice":
                return value in self.choices
            return 0 < len(value) <= (self.max_length or len(value))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "integer" and not isinstance(value, int):
            return False
        if self.choices:
            return value in self.choices
        low = 0 if self.kind == "time" else self.minimum
        return (
            math.isfinite(value)
            and (low is None or value >= low)
            and (self.maximum is None or value <= self.maximum)
        )


OPTIONS: tuple[Option, ...] = (
    Option(
        "format",
        "choice",
        "Format",
        "`mp3` plays everywhere; `m4a` (AAC) is copied from most videos, not encoded; `opus` "
        "sounds best for its size; `flac` is lossless; `wav` is uncompressed",
        choices=FORMATS,
        default="mp3",
        words={fmt.name: fmt.words for fmt in AUDIO_FORMATS},
        keeps_audio=True,
    ),
    Option(
        "bitrate",
        "choice",
        "Bitrate",
        "bitrate: higher sounds better, makes a larger file (constant for mp3, average for m4a "
        "and opus); not with `quality`",
        choices=BITRATES,
        absent=f"{DEFAULT_BITRATE}; 128k for opus",
        formats=LOSSY,
    ),
    Option(
        "quality",
        "integer",
        "VBR quality",
        "VBR quality, 0 best to 9 (LAME -V); not with `bitrate`",
        minimum=0,
        maximum=9,
        message="an integer from 0 (best) to 9",
        absent="off (constant bitrate)",
        formats=("mp3",),
    ),
    Option(
        "compression",
        "integer",
        "FLAC compression",
        "FLAC compression level, 0 fastest to 12 smallest; the audio is the same at every level",
        minimum=0,
        maximum=12,
        message="an integer from 0 (fastest) to 12 (smallest)",
        absent="5",
        formats=("flac",),
    ),
    Option(
        "sample_rate",
        "integer",
        "Sample rate",
        "resample to this rate, in Hz (opus: 8000, 12000, 16000, 24000 or 48000)",
        choices=SAMPLE_RATES,
        unit="Hz",
        absent="as the source",
    ),
    Option(
        "channels",
        "integer",
        "Channels",
        "1 mono, 2 stereo",
        choices=(1, 2),
        message="1 (mono) or 2 (stereo)",
        absent="as the source",
        words={1: "mono", 2: "stereo"},
    ),
    Option(
        "start",
        "time",
        "Start",
        "keep the source from here: seconds or HH:MM:SS(.mmm)",
        absent="the beginning",
    ),
    Option(
        "end",
        "time",
        "End",
        "keep the source up to here (after `start`); a window outside the source fails the job",
        absent="the end",
    ),
    Option(
        "loudness",
        "number",
        "Loudness",
        f"target integrated loudness in LUFS (EBU R128), true peak at most {TRUE_PEAK_DBTP:g} "
        "dBTP; e.g. -16 for podcasts, -14 for music streaming",
        minimum=-30.0,
        maximum=-5.0,
        unit="LUFS",
        absent="no normalisation",
    ),
    Option(
        "title",
        "text",
        "Title",
        "title tag",
        max_length=TAG_MAX_CHARS,
        absent="the file name without extension",
        keeps_audio=True,
    ),
    Option("artist", "text", "Artist", "artist tag", max_length=TAG_MAX_CHARS, keeps_audio=True),
    Option("album", "text", "Album", "album tag", max_length=TAG_MAX_CHARS, keeps_audio=True),
    Option(
        "cover",
        "choice",
        "Cover",
        "`frame`: a still from about 10% into the video as front cover (not in wav)",
        choices=COVERS,
        default="none",
        words={"frame": "a still from the video"},
        keeps_audio=True,
        formats=("mp3", "m4a", "opus", "flac"),
    ),
    Option(
        "track",
        "integer",
        "Audio track",
        "audio track, counting audio tracks from 0 (a film may have one per language)",
        minimum=0,
        maximum=63,
        message="an audio track number, counting from 0",
        default=0,
        keeps_audio=True,
    ),
)


def parse_given(
    values: Mapping[str, str | None], options: tuple[Option, ...] = OPTIONS
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Each described option given in values, parsed: the values, and the message of each bad
    one by name. Unknown names are ignored; an empty field is an option not given."""
    chosen: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for option in options:
        raw = values.get(option.name)
        if raw is None or raw == "":
            continue
        value = option.parse(raw)
        if value is None:
            errors[option.name] = [option.message]
        else:
            chosen[option.name] = value
    return chosen, errors


@dataclass(frozen=True)
class AudioOptions:
    """What a user chose for one conversion, validated. `bitrate` and `quality` exclude each
    other; with neither, a lossy format is encoded at its default bitrate (or copied, see
    `needs_encode`); an option the format does not take is refused. The fields are the names
    of OPTIONS, in their order."""

    format: str = "mp3"
    bitrate: str | None = None
    quality: int | None = None  # LAME -V: 0 best .. 9
    compression: int | None = None  # FLAC compression level
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

    NAMES = tuple(option.name for option in OPTIONS)

    @classmethod
    def parse(cls, values: Mapping[str, str | None]) -> "AudioOptions":
        """Options from text fields (form, query or tus metadata); unknown names are ignored.
        InvalidInput lists every bad field with its message."""
        chosen, errors = parse_given(values)
        if "bitrate" in chosen and "quality" in chosen:
            errors.setdefault("quality", []).append(
                "give either quality (VBR) or bitrate (CBR), not both"
            )
        start, end = chosen.get("start"), chosen.get("end")
        if start is not None and end is not None and start >= end:
            errors.setdefault("end", []).append("must be after start")
        for name, said in _not_for_format(chosen).items():
            errors.setdefault(name, []).append(said)
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

    def check(self) -> None:
        """ValueError naming each option whose value its description does not allow (options
        built in code rather than parsed reach the transcoder too)."""
        wrong = [
            f"{option.name} must be {option.message}, not {value!r}"
            for option in OPTIONS
            if (value := getattr(self, option.name)) is not None and not option.allows(value)
        ]
        wrong += [f"{name} {said}" for name, said in _not_for_format(asdict(self)).items()]
        if wrong:
            raise ValueError("; ".join(wrong))

    def titled(self, filename: str) -> "AudioOptions":
        """The title defaults to the upload's file name without its extension."""
        if self.title is not None:
            return self
        stem = filename.rsplit(".", 1)[0] if "." in filename.strip(".") else filename
        return replace(self, title=stem[:TAG_MAX_CHARS] or None)

    @property
    def needs_encode(self) -> bool:
        """True when an option that changes the audio is given (an MP3 track could not be
        copied)."""
        return any(getattr(self, o.name) is not None for o in OPTIONS if not o.keeps_audio)

    @property
    def label(self) -> str:
        """The bitrate column: the bitrate, V0..V9 for VBR, or `lossless`."""
        if self.quality is not None:
            return f"V{self.quality}"
        return self.bitrate or audio_format(self.format).default_bitrate or "lossless"

    @property
    def output(self) -> AudioFormat:
        """The output's format."""
        return audio_format(self.format)


def _not_for_format(chosen: Mapping[str, Any]) -> dict[str, str]:
    """The message of each given option that the chosen format does not take, by name."""
    fmt = chosen.get("format") or "mp3"
    if fmt not in FORMATS:
        return {}  # said by the format's own check
    said = {
        option.name: f"does not apply to format {fmt} (only to {', '.join(option.formats)})"
        for option in OPTIONS
        if chosen.get(option.name) is not None
        and fmt not in option.formats
        and chosen.get(option.name) != option.default
    }
    rate = chosen.get("sample_rate")
    if rate is not None and rate not in audio_format(fmt).sample_rates:
        rates = ", ".join(str(r) for r in audio_format(fmt).sample_rates)
        said["sample_rate"] = f"{rate} does not apply to format {fmt} (one of {rates})"
    return said
