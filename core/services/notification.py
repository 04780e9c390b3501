"""Telling the owner their MP3 is ready, once."""

from __future__ import annotations

import logging
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from core.domain.files import audio_name
from core.domain.jobs import JobStatus
from core.domain.values import Email, utcnow
from core.ports.accounts import UserRepository
from core.ports.jobs import EmailClaims, JobRepository
from core.ports.mail import Mailer
from core.ports.queue import TaskQueue

if TYPE_CHECKING:
    from core.services.links import LinkSigner

log = logging.getLogger(__name__)
# What the job shows when the email could not be delivered: no host, port or server reply.
GAVE_UP = "the email could not be delivered"
# ... and when the owner's address was never confirmed: nothing else is sent to it.
UNCONFIRMED = "no email: your email address is not confirmed yet"
# The most characters of a file name an email's subject and body quote.
SUBJECT_NAME_CHARS, BODY_NAME_CHARS = 40, 100
_QUOTES = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2039\u203a\u00ab\u00bb"
# How long a claimed email may take to send (SMTP's own timeouts are 10 s per step).
SENDING = timedelta(minutes=5)


def quoted(text: str, limit: int) -> str:
    """Text a user chose, as an email shows it: one line of visible characters (controls,
    bidirectional overrides, line and paragraph separators become spaces; quote marks go), at
    most `limit` of them (cut with …), between “ ”, so it cannot pass for the service's words."""
    visible = "".join(
        " " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text if ch not in _QUOTES
    )
    line = " ".join(visible.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "\u2026"
    return f"\u201c{line}\u201d"


def queue_email(claims: EmailClaims, queue: TaskQueue, job_id: str, claimed_for: timedelta) -> bool:
    """Queue the done job's email with a claim for its message, held claimed_for: another
    message queued meanwhile (a redelivery's, or the sweeper's while this one waits behind
    others) sends nothing. False, queueing nothing, while another sender's claim runs or once
    the email is sent."""
    holder, now = uuid.uuid4().hex, utcnow()
    if not claims.claim_notification(job_id, holder, now + claimed_for, now):
        return False
    queue.enqueue_notify(job_id, holder)
    return True


class Notifications:
    def __init__(
        self,
        jobs: JobRepository,
        claims: EmailClaims,
        users: UserRepository,
        mailer: Mailer,
        base_url: str,
        links: LinkSigner | None = None,
        link_ttl: int = 24 * 3600,
    ):
        self.jobs = jobs
        self.claims = claims
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
        if not self.claims.claim_notification(job_id, holder, now + SENDING, now):
            log.info("job %s: another sender holds the email", job_id)
            return False
        owner = self.users.get(job.owner_id)
        if owner is None:
            return False
        if not owner.email_confirmed:
            log.info("job %s: the owner's address is not confirmed; no email", job_id)
            self.jobs.update(job_id, {"notify_error": UNCONFIRMED})
            return False
        fmt = job.output
        # GET /jobs/<id>/mp3 stays the MP3's address; every format's is /audio
        link = f"{self.base_url}/jobs/{job.id}/{'mp3' if fmt.name == 'mp3' else 'audio'}"
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
                subject=f"Your {fmt.noun} is ready: "
                + quoted(audio_name(job.video_filename, fmt.extension), SUBJECT_NAME_CHARS),
                message_id=f"<job-{job.id}@vid2mp3>",
                body=(
                    f"Hello,\n\nthe {fmt.noun} of the file you uploaded as "
                    f"{quoted(job.video_filename, BODY_NAME_CHARS)} is ready.\n\n"
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
        self.claims.claim_notification(job_id, holder, until, now)

    def gave_up(self, job_id: str, error: str) -> None:
        """Record that the email will not be sent; the server log keeps the cause."""
        log.error("job %s: giving up on the email: %s", job_id, error)
        self.jobs.update(job_id, {"notify_error": GAVE_UP})
