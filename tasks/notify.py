"""`notify.job_done`: email the owner that the MP3 is ready; `notify.account_email`: the
emails about an account (a confirmation link, a changed address or password)."""

from __future__ import annotations

import logging
import random

from celery import shared_task

from celeryconfig import ACCOUNT_EMAIL_TASK, NOTIFY_TASK
from core.domain.errors import Unavailable
from core.ports.mail import MailError
from tasks import backoff, container

log = logging.getLogger(__name__)


@shared_task(name=NOTIFY_TASK, bind=True, max_retries=None, acks_late=True)
def job_done(self, job_id: str, holder: str | None = None) -> bool:
    """Send the email once; SMTP trouble retries with exponential backoff up to a cap.
    `holder` is the claim the sweeper made for this message; otherwise the task's id is."""
    services = container()
    settings = services.settings
    holder = holder or self.request.id
    try:
        sent = services.notifications.notify(job_id, holder)
    except (MailError, Unavailable) as exc:
        if self.request.retries >= settings.notify_max_retries:
            services.notifications.gave_up(job_id, f"{self.request.retries} retries: {exc}")
            services.metrics.email("failed")
            return False
        services.metrics.email("retry")
        delay = backoff(self.request.retries, settings.notify_retry_base)
        delay *= random.uniform(0.8, 1.0)  # jitter: retries of many jobs do not stampede
        try:
            services.notifications.hold(job_id, holder, delay)
        except Unavailable:  # the claim runs out sooner; a second sender still waits for it
            log.warning("job %s: could not hold the email's claim over the retry", job_id)
        log.warning(
            "job %s: email failed (%s), retry %s in %.1f s",
            job_id,
            exc,
            self.request.retries + 1,
            delay,
        )
        raise self.retry(exc=exc, countdown=delay) from exc
    services.metrics.email("sent" if sent else "skipped")
    log.info("job %s: email %s", job_id, "sent" if sent else "not needed")
    return sent


@shared_task(name=ACCOUNT_EMAIL_TASK, bind=True, max_retries=None, acks_late=True)
def account_email(self, user_id: int, kind: str, address: str | None = None) -> bool:
    """Send one account email; SMTP trouble retries like job_done's, then gives up."""
    services = container()
    settings = services.settings
    try:
        sent = services.account_mail.send(user_id, kind, address)
    except (MailError, Unavailable) as exc:
        if self.request.retries >= settings.notify_max_retries:
            log.error("user %s: giving up on the %s email: %s", user_id, kind, exc)
            services.metrics.email("failed")
            return False
        services.metrics.email("retry")
        delay = backoff(self.request.retries, settings.notify_retry_base)
        delay *= random.uniform(0.8, 1.0)
        log.warning("user %s: %s email failed (%s), retrying in %.1f s", user_id, kind, exc, delay)
        raise self.retry(exc=exc, countdown=delay) from exc
    services.metrics.email("sent" if sent else "skipped")
    log.info("user %s: %s email %s", user_id, kind, "sent" if sent else "not needed")
    return sent
