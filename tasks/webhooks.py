"""`webhooks.emit` and `webhooks.deliver`: tell a job owner's receivers how the job ended."""

from __future__ import annotations

import logging
import random

from celery import shared_task

from celeryconfig import WEBHOOK_DELIVER_TASK, WEBHOOK_EMIT_TASK
from core.domain.errors import Unavailable
from core.services.webhooks import Busy, RetryLater, retry_schedule, turn_delay
from tasks import container

log = logging.getLogger(__name__)


@shared_task(name=WEBHOOK_EMIT_TASK, bind=True, max_retries=10, acks_late=True)
def emit(self, job_id: str, event: str) -> int:
    """Make the event's deliveries (once per endpoint, however often this runs)."""
    try:
        return len(container().webhooks.emit(job_id, event))
    except Unavailable as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(name=WEBHOOK_DELIVER_TASK, bind=True, max_retries=None, acks_late=True)
def deliver(self, delivery_id: str, holder: str | None = None, waited: int = 0) -> str:
    """One attempt; a receiver that fails or does not answer is retried with exponential
    backoff (WEBHOOK_RETRY_BASE_SECONDS, doubling, at most an hour apart) for 24 h. A
    delivery whose receiver (or owner) has its share of attempts in flight waits its turn:
    `waited` counts those turns, which are not retries."""
    services = container()
    schedule = retry_schedule(services.settings.webhook_retry_base)
    holder = holder or self.request.id  # the same through this message's retries
    try:
        return services.webhooks.deliver(delivery_id, holder)
    except Busy as exc:
        # The worker's own slot is free meanwhile, for other users' deliveries.
        delay = turn_delay(waited, services.settings.webhook_timeout) * random.uniform(0.5, 1.0)
        services.webhooks.wait_turn(delivery_id, delay, holder)
        log.info("webhook delivery %s: %s, again in %.1f s", delivery_id, exc, delay)
        raise self.retry(
            exc=exc, countdown=delay, args=(delivery_id, holder), kwargs={"waited": waited + 1}
        ) from exc
    except (RetryLater, Unavailable) as exc:
        retries = self.request.retries - waited
        if retries >= len(schedule):
            services.webhooks.gave_up(delivery_id)
            log.warning(
                "webhook delivery %s: giving up after %d attempts", delivery_id, retries + 1
            )
            return "failed"
        delay = schedule[retries] * random.uniform(0.9, 1.0)  # jitter
        if isinstance(exc, RetryLater):
            services.webhooks.retry_at(delivery_id, delay, holder)
        log.info(
            "webhook delivery %s: %s, retry %d in %.1f s", delivery_id, exc, retries + 1, delay
        )
        raise self.retry(
            exc=exc, countdown=delay, args=(delivery_id, holder), kwargs={"waited": waited}
        ) from exc
