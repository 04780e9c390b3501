"""`fetch.import_url`: download an imported job's video, then queue its conversion."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from celeryconfig import FETCH_TASK
from core.domain.errors import Unavailable
from core.ports.imports import FetchError
from core.services.conversion import Outcome
from tasks import backoff, container

log = logging.getLogger(__name__)


@shared_task(name=FETCH_TASK, bind=True, max_retries=10, acks_late=True)
def import_url(self, job_id: str) -> str:
    """Fetch one job's video; outages retry with backoff, a bad URL or answer fails the job
    once, a job another attempt holds is tried again once that attempt's lease could have
    expired (if its holder died, this delivery takes over)."""
    services = container()
    try:
        outcome = services.imports.fetch(job_id)
    except SoftTimeLimitExceeded:
        services.imports.fail(job_id, FetchError(FetchError.TIMEOUT, "the fetch took too long"))
        return Outcome.FAILED.value
    except Unavailable as exc:
        log.warning("job %s: %s, retrying the fetch", job_id, exc.message)
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, 2.0, 120.0)) from exc
    if outcome is Outcome.LEASED and self.request.retries < self.max_retries:
        raise self.retry(countdown=services.settings.lease_seconds + 1)
    log.info("job %s: fetch %s", job_id, outcome.value)
    return outcome.value
