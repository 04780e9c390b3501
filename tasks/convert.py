"""`convert.video_to_mp3`: turn a job's video into an MP3."""
from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from celeryconfig import CONVERT_TASK
from core.domain import JobStatus, Unavailable
from tasks import backoff, container

log = logging.getLogger(__name__)


@shared_task(name=CONVERT_TASK, bind=True, max_retries=10, acks_late=True)
def video_to_mp3(self, job_id: str) -> str | None:
    """Convert one job; outages retry with backoff, bad media fails once."""
    services = container()
    started = time.monotonic()
    try:
        status = services.jobs.convert(job_id)
    except SoftTimeLimitExceeded:
        limit = services.settings.convert_soft_time_limit
        services.jobs.fail(job_id, f"the conversion took longer than {limit} s")
        _finished(job_id, JobStatus.FAILED, time.monotonic() - started)
        return "failed"
    except Unavailable as exc:
        log.warning("job %s: %s, retrying", job_id, exc.message)
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, 2.0, 120.0))
    _finished(job_id, status, time.monotonic() - started)
    return status.value if status else None


OUTCOMES = {JobStatus.DONE: "succeeded", JobStatus.FAILED: "failed"}


def _finished(job_id: str, status: JobStatus | None, seconds: float) -> None:
    """Count the outcome (a job deleted before it finished was cancelled) and log it."""
    outcome = OUTCOMES.get(status, "cancelled") if status else "cancelled"
    container().metrics.job_finished(outcome, seconds)
    log.info("job %s %s in %.1f s", job_id, outcome, seconds)
