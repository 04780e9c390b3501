"""A conversion job and its states, and a resumable upload on its way to becoming one."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from core.domain.errors import InvalidInput
from core.domain.options import DEFAULT_BITRATE, FORMATS, AudioFormat, audio_format

MAX_TAG_LENGTH = 255
LABELS = ("tag", "webhook_url")  # the fields of an upload or import that label its job


class JobStatus(str, enum.Enum):
    FETCHING = "fetching"  # imported by URL: a fetch worker downloads the video
    QUEUED = "queued"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # its MP3 passed RETENTION_SECONDS and was deleted


ENDED = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


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
    source_url: str | None = None  # the URL an imported job's video is fetched from
    fetched_bytes: int | None = None  # bytes of the video fetched so far (imports)
    fetch_total: int | None = None  # the size the server announced, when it did
    tag: str | None = None  # the owner's own reference, echoed in events and webhooks
    webhook_url: str | None = None  # this job's events also go there

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.FETCHING, JobStatus.QUEUED, JobStatus.CONVERTING)

    @property
    def output(self) -> AudioFormat:
        """The format of the job's output (mp3 for a job queued before there were others)."""
        name = (self.options or {}).get("format")
        return audio_format(name if name in FORMATS else "mp3")


@dataclass(frozen=True)
class JobLabels:
    """What a client attaches to a job besides its options: its own `tag` (echoed in the job,
    its events and webhooks) and a `webhook_url` that receives this job's events."""

    tag: str | None = None
    webhook_url: str | None = None

    @classmethod
    def parse(cls, fields: Mapping[str, Any]) -> "JobLabels":
        """From form, query, tus metadata or JSON fields; InvalidInput names a bad one (the
        webhook URL's addresses are checked by the webhooks service)."""
        errors: dict[str, list[str]] = {}
        values: dict[str, str | None] = {}
        for name in LABELS:
            value = fields.get(name)
            if value is None or value == "":
                values[name] = None
            elif not isinstance(value, str) or not value.isprintable():
                errors[name] = ["must be printable text"]
            else:
                values[name] = value
        tag = values.get("tag")
        if tag is not None and len(tag) > MAX_TAG_LENGTH:
            errors["tag"] = [f"at most {MAX_TAG_LENGTH} characters"]
        if errors:
            raise InvalidInput("invalid " + ", ".join(sorted(errors)), {"fields": errors})
        return cls(tag=values.get("tag"), webhook_url=values.get("webhook_url"))

    def to_dict(self) -> dict[str, str]:
        """The labels given, for a request's fingerprint."""
        return {name: value for name, value in vars(self).items() if value is not None}


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
