"""Finding work whose message was lost: expired leases, queued jobs the broker forgot,
imports whose fetch stalled,
finished jobs whose email was never sent, and ended jobs whose webhook event was never
emitted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from core.domain.jobs import JobStatus
from core.domain.values import utcnow
from core.ports.jobs import EmailClaims, JobRepository, JobSweeps
from core.ports.queue import TaskQueue
from core.ports.webhooks import WebhookRepository
from core.services.notification import queue_email

log = logging.getLogger(__name__)
# Events of jobs that ended longer ago than this are not looked for (deliveries retry for a
# day; an event that old would reach a receiver no one is waiting on).
ANNOUNCE_WITHIN = timedelta(hours=24)
# A done job whose email no sender has claimed this long after it finished gets one queued
# (the email is claimed before it is sent, so a late first message never sends a second).
UNSENT_AFTER = timedelta(minutes=2)


@dataclass
class Sweeper:
    """Looks for lost work with the jobs' sweeper queries, and queues it again."""

    jobs: JobRepository
    sweeps: JobSweeps
    claims: EmailClaims
    queue: TaskQueue
    queued_after: timedelta  # a queued job not updated this long may have lost its message
    webhooks: WebhookRepository | None = None

    def sweep(self) -> list[str]:
        """Enqueue again what no live worker holds or will receive; returns the job ids."""
        requeued: list[str] = []
        for job in self.sweeps.expired_leases(utcnow()):
            self.queue.enqueue_convert(job.id)
            requeued.append(job.id)
        cutoff = utcnow() - self.queued_after
        for job in self.sweeps.stale((JobStatus.FETCHING,), cutoff):
            # A fetch whose message was lost, or whose worker died: the lease decides who
            # fetches, so a second message for a live fetch only waits and stops.
            self.jobs.update(job.id, {})  # touch: not picked again until cutoff passes
            self.queue.enqueue_fetch(job.id)
            requeued.append(job.id)
        queued = self.sweeps.stale((JobStatus.QUEUED,), cutoff)
        if queued:
            # A job waiting behind a long queue is not lost: only those the broker lacks are.
            pending = self.queue.pending_convert_ids()
            for job in queued:
                if pending is None or job.id not in pending:
                    self.jobs.update(job.id, {})  # touch: not picked again until cutoff passes
                    self.queue.enqueue_convert(job.id)
                    requeued.append(job.id)
        now = utcnow()
        for job in self.claims.unsent(now - min(self.queued_after, UNSENT_AFTER), now):
            # Claimed for as long as a queued job may wait: the sweeps meanwhile queue no
            # second message, and a late first one sends nothing.
            if queue_email(self.claims, self.queue, job.id, self.queued_after):
                requeued.append(job.id)
        if self.webhooks is not None:
            # The worker that ended a job may have died before it queued the event; emitting
            # makes each delivery once, so a late duplicate sends nothing twice.
            for job_id, event in self.webhooks.unannounced(cutoff - ANNOUNCE_WITHIN, cutoff):
                log.info("job %s: emitting the lost %s event", job_id, event)
                self.jobs.update(job_id, {})  # touch: not emitted again until cutoff passes
                self.queue.enqueue_event(job_id, event)
                if job_id not in requeued:
                    requeued.append(job_id)
        return requeued
