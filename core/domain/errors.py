"""The errors of vid2mp3: what the API turns into JSON responses, why a conversion failed,
and the signal to stop."""

from __future__ import annotations

from typing import Any


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

    def __init__(self, service: str, message: str | None = None, cause: str | None = None):
        super().__init__(message or f"{service} is unavailable", {"service": service})
        self.service = service
        self.cause = cause  # words safe to show (readiness): no host, key or credential


class Busy(DomainError):
    """This process has no room for more of something (open event streams): try again in
    retry_after seconds, here or on another process."""

    status = 503
    code = "busy"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = max(1, int(retry_after))


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
    TOO_LARGE = "the {what} would be larger than the {limit} limit"
    TOO_SLOW = "the conversion took too long"
    EMPTY = "the file is empty"
    MISSING = "the uploaded video is missing"
    SILENT = "the audio is silent, so its loudness cannot be set"
    NO_TRACK = "there is no audio track {track}: the file has {count} audio track{s} (from 0)"
    WINDOW = "the start and end are outside the source, which lasts {duration:.3f} s"
    NO_COVER = "the source has no video, so the {what} has no cover"
    NO_FRAME = "no still could be taken from the video, so the {what} has no cover"

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Stopped(Exception):
    """Work was asked to stop before it finished: its lease was lost, or it was cancelled."""


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
