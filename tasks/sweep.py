"""`sweep.stale_jobs`: enqueue again jobs whose message was lost (broker restart, dead worker)."""

from __future__ import annotations

import logging

from celery import shared_task

from celeryconfig import SWEEP_TASK
from tasks import container

log = logging.getLogger(__name__)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def stale_jobs() -> int:
    services = container()
    requeued = services.sweeper.sweep()
    if requeued:
        log.info("re-enqueued %d stale jobs: %s", len(requeued), ", ".join(requeued))
    services.retention.purge()
    return len(requeued)
