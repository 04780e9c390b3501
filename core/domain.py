"""Value objects, entities and errors of vid2mp3. Knows nothing of Flask, Celery or databases."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Mapping


class Role(str, enum.Enum):
    USER = "user"
    ADMIN = "admin"


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # its MP3 passed RETENTION_SECONDS and was deleted


ENDED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


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
_DIGITS = re.compile(r"[0-9]+")
MAX_DIGITS = 18  # below 2**63: every such number fits a BIGINT


def ascii_int(text: str | None, max_digits: int = MAX_DIGITS) -> int | None:
    """The number written in text as 1 to max_digits plain ASCII digits, else None."""
    if text is None or len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)


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


@dataclass
class User:
    id: int
    name: str
    email: str
    role: Role
    password_hash: str
    phone: str | None = None
    token_version: int = 0
    created_at: datetime | None = None
    # An address asked for and not yet confirmed through the signed link sent to it.
    pending_email: str | None = None
    # False for a sign-up whose address was never confirmed: nothing but the confirmation is
    # sent to it.
    email_confirmed: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass
class NewUser:
    name: str
    email: str
    password_hash: str
    role: Role = Role.USER
    phone: str | None = None
    email_confirmed: bool = True


class AccountEmail(str, enum.Enum):
    """The emails about an account itself; none carries text the user chose."""

    CONFIRM = "confirm-email"  # to the address to confirm: the signed link
    EMAIL_CHANGED = "email-changed"  # to the old address, once the new one is confirmed
    PASSWORD_CHANGED = "password-changed"  # to the account's address


@dataclass
class Principal:
    """The authenticated caller of a request, as read from a valid token."""

    user_id: int
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_access(self, owner_id: int) -> bool:
        return self.is_admin or self.user_id == owner_id


@dataclass
class Job:
    id: str
    owner_id: int
    status: JobStatus
    video_fid: str | None  # None once the source was deleted (job ended, KEEP_SOURCE=false)
    video_filename: str
    video_size: int
    bitrate: str = DEFAULT_BITRATE
    progress: float = 0.0
    error: str | None = None
    mp3_fid: str | None = None
    mp3_size: int | None = None
    duration_s: float | None = None
    attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    notified_at: datetime | None = None
    notify_error: str | None = None
    notify_holder: str | None = None  # the notify task sending the email now, or about to
    notify_until: datetime | None = None  # ...until then; afterwards another may
    lease_id: str | None = None
    lease_expires_at: datetime | None = None
    lease_holder: str | None = None  # the process running the attempt (AttemptHolders)
    request_id: str | None = None  # X-Request-ID of the upload, to find it in the logs
    expires_at: datetime | None = None  # when a done job's MP3 is deleted (RETENTION_SECONDS)
    options: dict[str, Any] = field(default_factory=dict)  # AudioOptions.to_dict()
    source: dict[str, Any] | None = None  # SourceInfo.to_dict() once probed
    mode: str | None = None  # "encode" or "copy"
    notes: list[str] = field(default_factory=list)  # what the job could not do, said plainly

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.CONVERTING)


WEBHOOK_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")
OUTCOME_EVENTS = {
    JobStatus.DONE: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}


@dataclass
class WebhookEndpoint:
    id: str
    owner_id: int
    url: str
    events: list[str]
    secret: str  # whsec_...: shown to its owner only when created
    disabled_at: datetime | None = None  # the receiver answered 410 Gone
    created_at: datetime | None = None


@dataclass
class WebhookDelivery:
    """One event for one endpoint: a single row per (endpoint, job, event), so the message and
    its webhook-id stay the same however often the event is emitted."""

    id: str
    endpoint_id: str
    job_id: str
    event: str
    body: str
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    next_retry_at: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def msg_id(self) -> str:
        return f"msg_{self.id}"


@dataclass
class Page:
    """One page of a listing, with the total count."""

    items: list[Any]
    page: int
    per_page: int
    total: int


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of a source, as ffmpeg declares it."""

    codec: str
    channels: int | None = None
    sample_rate: int | None = None
    language: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg reports about a media file (cover art is not a video)."""

    duration: float | None
    has_audio: bool
    has_video: bool
    audio_codec: str | None = None
    video_size: tuple[int, int] | None = None
    sample_rate: int | None = None
    audio_tracks: tuple[AudioTrack, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The job's `source`: duration, audio tracks, video size."""
        return {
            "duration": self.duration,
            "audio_tracks": [asdict(track) for track in self.audio_tracks],
            "video": (
                {"width": self.video_size[0], "height": self.video_size[1]}
                if self.video_size
                else None
            ),
        }

    def track(self, index: int) -> "MediaInfo":
        """This source seen through its audio track `index`; MediaError when there is none."""
        tracks = self.audio_tracks
        if not tracks and index == 0:
            return self
        if index >= len(tracks):
            raise MediaError(
                MediaError.NO_TRACK.format(
                    track=index, count=len(tracks), s="" if len(tracks) == 1 else "s"
                )
            )
        chosen = tracks[index]
        return replace(self, audio_codec=chosen.codec, sample_rate=chosen.sample_rate)


@dataclass(frozen=True)
class Encoded:
    """What one conversion wrote: seconds of audio, `encode` or `copy`, and notes for the user."""

    duration: float
    mode: str
    notes: tuple[str, ...] = ()
    source: MediaInfo | None = None  # the input as ffmpeg described it


@dataclass(frozen=True)
class MediaLimits:
    """The cost ceilings of one conversion."""

    max_duration: float
    min_sample_rate: int
    max_output_bytes: int
    memory_bytes: int

    def check(self, source: MediaInfo) -> None:
        """Refuse a source whose declared properties exceed the ceilings."""
        if not source.has_audio:
            raise MediaError(MediaError.NO_AUDIO)
        if source.sample_rate is not None and source.sample_rate < self.min_sample_rate:
            raise MediaError(MediaError.LOW_SAMPLE_RATE.format(rate=self.min_sample_rate))
        if source.duration is not None and source.duration > self.max_duration:
            raise MediaError(MediaError.TOO_LONG.format(limit=hours(self.max_duration)))


def hours(seconds: float) -> str:
    """'4 h', '90 min' or '45 s': a limit as people say it."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


@dataclass
class Blob:
    """A stored file: its id, size in bytes and metadata."""

    fid: str
    size: int
    content_type: str = "application/octet-stream"
    filename: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Email:
    to: str
    subject: str
    body: str
    message_id: str | None = None


# --- errors -----------------------------------------------------------------------------


class DomainError(Exception):
    """Base of every error the API turns into a JSON response."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(DomainError):
    """The request itself is malformed (a header that should be a number is not one)."""

    status = 400
    code = "bad_request"


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class TooLarge(DomainError):
    status = 413
    code = "too_large"


class UnsupportedMedia(DomainError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """A backing service (MySQL, Redis, blob store, broker) cannot be reached."""

    status = 503
    code = "unavailable"

    def __init__(self, service: str, message: str | None = None):
        super().__init__(message or f"{service} is unavailable", {"service": service})
        self.service = service


class QuotaExceeded(DomainError):
    """A per-user ceiling: `limit` names the setting, so the client knows which one."""

    code = "quota_exceeded"

    def __init__(
        self,
        message: str,
        limit: str,
        maximum: int,
        used: int,
        status: int = 413,
        retry_after: int | None = None,
    ):
        super().__init__(message, {"quota": {"limit": limit, "max": maximum, "used": used}})
        self.status = status
        self.retry_after = retry_after


class MediaError(Exception):
    """ffmpeg cannot turn this input into an MP3. Permanent: never retried.

    `str(error)` is one of the short reasons below, shown to the user; `detail` (ffmpeg's own
    words, paths, ids) goes to the server log only."""

    NOT_MEDIA = "not an audio or video file we accept"
    NO_AUDIO = "the file has no audio track"
    TOO_LONG = "longer than the {limit} limit"
    LOW_SAMPLE_RATE = "the audio's sample rate is below {rate} Hz"
    DAMAGED = "the file is damaged or truncated"
    TOO_LARGE = "the MP3 would be larger than the {limit} limit"
    TOO_SLOW = "the conversion took too long"
    EMPTY = "the file is empty"
    MISSING = "the uploaded video is missing"
    SILENT = "the audio is silent, so its loudness cannot be set"
    NO_TRACK = "there is no audio track {track}: the file has {count} audio track{s} (from 0)"
    WINDOW = "the start and end are outside the source, which lasts {duration:.3f} s"
    NO_COVER = "the source has no video, so the MP3 has no cover"
    NO_FRAME = "no still could be taken from the video, so the MP3 has no cover"

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Stopped(Exception):
    """Work was asked to stop before it finished: its lease was lost, or it was cancelled."""


# --- resumable uploads (tus) ------------------------------------------------------------


@dataclass
class Upload:
    """A resumable upload in progress: `offset` of `length` bytes are stored under `handle`."""

    id: str
    owner_id: int
    length: int
    offset: int
    handle: str
    filename: str
    options: dict[str, str]
    expires_at: float  # epoch seconds
    job_id: str | None = None


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition_failed"


class Gone(DomainError):
    status = 410
    code = "gone"


class ChecksumMismatch(DomainError):
    """tus checksum extension: the body does not match Upload-Checksum; nothing was kept."""

    status = 460
    code = "checksum_mismatch"
