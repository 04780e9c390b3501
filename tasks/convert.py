"""`convert.video_to_mp3`: turn a job's video into an MP3."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from celeryconfig import CONVERT_TASK
from core.domain.errors import MediaError, Unavailable
from core.ports.metrics import JobOutcome
from core.services.conversion import Outcome
from tasks import backoff, container

log = logging.getLogger(__name__)


@shared_task(name=CONVERT_TASK, bind=True, max_retries=10, acks_late=True)
def video_to_mp3(self, job_id: str) -> str:
    """Convert one job; outages retry with backoff, bad media fails once, a job another
    attempt holds is tried again once that attempt's lease could have expired."""
    services = container()
    started = time.monotonic()
    try:
        outcome = services.conversion.convert(job_id)
    except SoftTimeLimitExceeded:
        services.conversion.fail(job_id, MediaError.TOO_SLOW)
        _finished(job_id, Outcome.FAILED, time.monotonic() - started)
        return Outcome.FAILED.value
    except Unavailable as exc:
        log.warning("job %s: %s, retrying", job_id, exc.message)
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, 2.0, 120.0)) from exc
    if outcome is Outcome.LEASED and self.request.retries < self.max_retries:
        # If its holder died, this delivery takes over after the lease runs out; if it lives,
        # this finds the job finished and stops.
        raise self.retry(countdown=services.settings.lease_seconds + 1)
    _finished(job_id, outcome, time.monotonic() - started)
    return outcome.value


# What operators count: only attempts that ended the job (a delivery that found the job held,
# finished or deleted did no conversion).
OUTCOMES: dict[Outcome, JobOutcome] = {Outcome.DONE: "succeeded", Outcome.FAILED: "failed"}


def _finished(job_id: str, outcome: Outcome, seconds: float) -> None:
    if outcome in OUTCOMES:
        container().metrics.job_finished(OUTCOMES[outcome], seconds)
    log.info("job %s: %s in %.1f s", job_id, outcome.value, seconds)
