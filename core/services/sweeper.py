"""Finding work whose message was lost: expired leases, queued jobs the broker forgot, and
finished jobs whose email was never sent."""

from __future__ import annotations

import logging
from datetime import timedelta

from core.domain import JobStatus
from core.ports import JobRepository, TaskQueue
from core.services.jobs import utcnow

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, jobs: JobRepository, queue: TaskQueue, queued_after: timedelta):
        self.jobs = jobs
        self.queue = queue
        self.queued_after = queued_after

    def sweep(self) -> list[str]:
        """Enqueue again what no live worker holds or will receive; returns the job ids."""
        requeued: list[str] = []
        for job in self.jobs.expired_leases(utcnow()):
            self.queue.enqueue_convert(job.id)
            requeued.append(job.id)
        cutoff = utcnow() - self.queued_after
        queued = self.jobs.stale((JobStatus.QUEUED,), cutoff)
        if queued:
            # A job waiting behind a long queue is not lost: only those the broker lacks are.
            pending = self.queue.pending_convert_ids()
            for job in queued:
                if pending is None or job.id not in pending:
                    self.jobs.update(job.id, {})  # touch: not picked again until cutoff passes
                    self.queue.enqueue_convert(job.id)
                    requeued.append(job.id)
        for job in self.jobs.stale((JobStatus.DONE,), cutoff):
            if job.notified_at is None and job.notify_error is None:
                self.jobs.update(job.id, {})
                self.queue.enqueue_event(job.id, "job.succeeded")  # once, however often
                self.queue.enqueue_notify(job.id)
                requeued.append(job.id)
        return requeued
