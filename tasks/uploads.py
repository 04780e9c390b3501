"""`uploads.purge_expired`: remove expired resumable uploads and their bytes (run by beat)."""

from __future__ import annotations

import logging

from celery import shared_task

from celeryconfig import PURGE_UPLOADS_TASK
from tasks import container

log = logging.getLogger(__name__)


@shared_task(name=PURGE_UPLOADS_TASK, ignore_result=True)
def purge_expired() -> int:
    purged = container().uploads.purge_expired()
    if purged:
        log.info("purged %d expired resumable uploads", purged)
    return purged
