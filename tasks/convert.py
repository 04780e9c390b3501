"""`convert.video_to_mp3`: turn a job's video into an MP3."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from celeryconfig import CONVERT_TASK
from core.domain import Unavailable
from tasks import backoff, container

log = logging.getLogger(__name__)


@shared_task(name=CONVERT_TASK, bind=True, max_retries=10, acks_late=True)
def video_to_mp3(self, job_id: str) -> str | None:
    """Convert one job; outages retry with backoff, bad media fails once."""
    services = container()
    try:
        status = services.jobs.convert(job_id)
    except SoftTimeLimitExceeded:
        limit = services.settings.convert_soft_time_limit
        services.jobs.fail(job_id, f"the conversion took longer than {limit} s")
        return "failed"
    except Unavailable as exc:
        log.warning("job %s: %s, retrying", job_id, exc.message)
        raise self.retry(exc=exc, countdown=backoff(self.request.retries, 2.0, 120.0))
    return status.value if status else None
