"""One-time upload links: a URL a user hands to someone without an account, good for one file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.domain.jobs import JobLabels


@dataclass
class UploadLink:
    id: str
    owner_id: int
    token_hash: bytes
    max_bytes: int
    expires_at: datetime
    options: dict[str, str] = field(default_factory=dict)  # as given, validated
    allow_download: bool = False
    tag: str | None = None  # the job's tag and webhook_url, as given (JobLabels)
    webhook_url: str | None = None
    used_at: datetime | None = None  # when an upload through it started (a claim) ...
    job_id: str | None = None  # ... and the job it made, once it succeeded
    upload_id: str | None = None  # the resumable (tus) upload under way through it
    deleted_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def labels(self) -> JobLabels:
        """The tag and webhook_url the job a file makes through this link carries."""
        return JobLabels(tag=self.tag, webhook_url=self.webhook_url)

    def state(self, now: datetime) -> str:
        """open, used, expired or deleted."""
        if self.deleted_at is not None:
            return "deleted"
        if self.job_id is not None:
            return "used"
        if self.expires_at <= now:
            return "expired"
        return "open"
