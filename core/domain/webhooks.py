"""Webhooks: the events a job's owner may subscribe to, their receivers and deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.domain.jobs import JobStatus

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
    job_id: str | None = None  # a job's own webhook_url: signed with the account's secret

    @property
    def per_job(self) -> bool:
        return self.job_id is not None


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
