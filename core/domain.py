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
    video_fid: str
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
    request_id: str | None = None  # X-Request-ID of the upload, to find it in the logs


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


class MediaError(Exception):
    """ffmpeg cannot turn this input into an MP3. Permanent: never retried."""
