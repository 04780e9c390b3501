"""Value objects, entities and errors of vid2mp3. Knows nothing of Flask, Celery or databases."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    lease_id: str | None = None
    lease_expires_at: datetime | None = None
    request_id: str | None = None  # X-Request-ID of the upload, to find it in the logs
    expires_at: datetime | None = None  # when a done job's MP3 is deleted (RETENTION_SECONDS)

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.CONVERTING)


WEBHOOK_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")


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
class MediaInfo:
    """What ffmpeg reports about a media file (cover art is not a video)."""

    duration: float | None
    has_audio: bool
    has_video: bool
    audio_codec: str | None = None
    video_size: tuple[int, int] | None = None
    sample_rate: int | None = None


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

    def __init__(self, message: str, limit: str, maximum: int, used: int, status: int = 413,
                 retry_after: int | None = None):
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
