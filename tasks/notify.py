"""`notify.job_done`: email the owner that the MP3 is ready."""

from __future__ import annotations

import logging
import random

from celery import shared_task

from celeryconfig import NOTIFY_TASK
from core.domain import Unavailable
from core.ports import MailError
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
