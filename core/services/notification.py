"""Telling the owner their MP3 is ready, once."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from core.domain import Email, JobStatus
from core.ports import JobRepository, Mailer, TaskQueue, UserRepository
from core.services.jobs import mp3_name, utcnow

if TYPE_CHECKING:
    from core.services.links import LinkSigner

log = logging.getLogger(__name__)
# What the job shows when the email could not be delivered: no host, port or server reply.
GAVE_UP = "the email could not be delivered"
# How long a claimed email may take to send (SMTP's own timeouts are 10 s per step).
SENDING = timedelta(minutes=5)


def queue_email(jobs: JobRepository, queue: TaskQueue, job_id: str, claimed_for: timedelta) -> bool:
    """Queue the done job's email with a claim for its message, held claimed_for: another
    message queued meanwhile (a redelivery's, or the sweeper's while this one waits behind
    others) sends nothing. False, queueing nothing, while another sender's claim runs or once
    the email is sent."""
    holder, now = uuid.uuid4().hex, utcnow()
    if not jobs.claim_notification(job_id, holder, now + claimed_for, now):
        return False
    queue.enqueue_notify(job_id, holder)
    return True


class Notifications:
    def __init__(
        self,
        jobs: JobRepository,
        users: UserRepository,
        mailer: Mailer,
        base_url: str,
        links: LinkSigner | None = None,
        link_ttl: int = 24 * 3600,
    ):
        self.jobs = jobs
        self.users = users
        self.mailer = mailer
        self.base_url = base_url.rstrip("/")
        self.links = links
        self.link_ttl = link_ttl

    def notify(self, job_id: str, holder: str | None = None) -> bool:
        """Email the owner that the MP3 is ready, once; MailError propagates for a retry.

        The sender first claims the email (`holder`: the task, the same through its retries),
        so two deliveries of the task, or a retry chain and the sweeper's, never send at once."""
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.DONE or job.notified_at is not None:
            return False
        now = utcnow()
        holder = holder or uuid.uuid4().hex
        if not self.jobs.claim_notification(job_id, holder, now + SENDING, now):
            log.info("job %s: another sender holds the email", job_id)
            return False
        owner = self.users.get(job.owner_id)
        if owner is None:
            return False
        link = f"{self.base_url}/jobs/{job.id}/mp3"
        if self.links is not None and job.mp3_fid:
            signed, expires_at = self.links.sign(job.id, job.mp3_fid, self.link_ttl)
            until = datetime.fromtimestamp(expires_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            download = (
                f"Download: {signed}\n(this link works without signing in until {until})"
                f"\n\nAfterwards, sign in and download it from {link}\n"
            )
        else:
            download = (
                f"Download: {link}\n\n"
                "Sign in and send your access token with the request to download it.\n"
            )
        self.mailer.send(
            Email(
                to=owner.email,
                subject=f"Your MP3 is ready: {mp3_name(job.video_filename)}",
                message_id=f"<job-{job.id}@vid2mp3>",
                body=(
                    f"Hello {owner.name},\n\nyour MP3 of {job.video_filename} is ready.\n\n"
                    f"Job: {job.id}\n{download}"
                ),
            )
        )
        self.jobs.update(job_id, {"notified_at": utcnow(), "notify_error": None})
        return True

    def hold(self, job_id: str, holder: str, retry_in: float) -> None:
        """Keep the claim over a retry's wait, so the sweeper sends no second email meanwhile
        (if the retry never comes, the claim runs out and the sweeper takes over)."""
        now = utcnow()
        until = now + timedelta(seconds=retry_in) + SENDING
        self.jobs.claim_notification(job_id, holder, until, now)

    def gave_up(self, job_id: str, error: str) -> None:
        """Record that the email will not be sent; the server log keeps the cause."""
        log.error("job %s: giving up on the email: %s", job_id, error)
        self.jobs.update(job_id, {"notify_error": GAVE_UP})
