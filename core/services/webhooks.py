"""Webhooks: endpoints a user registers, one signed message per job outcome and endpoint,
delivered with retries for up to a day; a receiver answering 410 Gone is disabled."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.domain.accounts import Principal
from core.domain.errors import InvalidInput, NotFound, TooManyRequests, Unavailable
from core.domain.jobs import Job
from core.domain.values import utcnow
from core.domain.webhooks import WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint
from core.ports.jobs import JobRepository
from core.ports.limits import RateLimiter, Slots
from core.ports.metrics import Metrics
from core.ports.queue import TaskQueue
from core.ports.webhooks import WebhookError, WebhookRepository, WebhookSender
from core.services.job_json import job_json

log = logging.getLogger(__name__)
RETRY_FOR = timedelta(hours=24)
RETRY_CAP_SECONDS = 3600.0
# How long a claimed attempt may take (WEBHOOK_TIMEOUT_SECONDS is at most a minute).
SENDING = timedelta(minutes=2)
MAX_ENDPOINTS = 10


@dataclass(frozen=True)
class DeliveryLimits:
    """What one user's receivers may take of the webhook workers."""

    per_endpoint: int = 2  # attempts in flight at once to one receiver
    per_owner: int = 4  # ... to all of one user's receivers
    attempt_seconds: float = 10.0  # the sender's deadline: a slot is held no longer
    redeliveries: int = 10  # manual redeliveries per user ...
    redelivery_window: int = 60  # ... within this many seconds

    @property
    def slot_ttl(self) -> float:
        """A slot whose holder died frees itself this long after it was taken."""
        return self.attempt_seconds + 30.0


def retry_schedule(
    base: float, cap: float = RETRY_CAP_SECONDS, within: timedelta = RETRY_FOR
) -> list[float]:
    """Delays before each retry: base, doubling, capped at an hour, until a day has passed."""
    delays: list[float] = []
    while sum(delays) < within.total_seconds():
        delays.append(min(cap, base * 2 ** len(delays)))
    return delays


def turn_delay(waited: int, attempt_seconds: float) -> float:
    """How long a Busy delivery waits before its next turn: 1 s, doubling, at most half an
    attempt's deadline (a slot frees within one deadline), without jitter."""
    return float(min(2.0**waited, max(1.0, attempt_seconds / 2)))


class RetryLater(Exception):
    """The receiver did not take the message; the task retries it after a delay."""


class Busy(Exception):
    """The receiver, or its owner's receivers, have their share of attempts in flight: this
    one waits its turn (not an attempt, not a failure)."""


class Webhooks:
    def __init__(
        self,
        repo: WebhookRepository,
        sender: WebhookSender,
        queue: TaskQueue,
        jobs: JobRepository,
        link: Callable[[Job], str | None],
        metrics: Metrics,
        slots: Slots,
        limiter: RateLimiter,
        limits: DeliveryLimits,
    ):
        self.repo = repo
        self.sender = sender
        self.queue = queue
        self.jobs = jobs
        self.link = link  # a signed download link for a done job
        self.metrics = metrics
        self.slots = slots
        self.limiter = limiter
        self.limits = limits

    # --- endpoints, for their owner --------------------------------------------------------

    def register(self, actor: Principal, url: str, events: list[str] | None) -> WebhookEndpoint:
        chosen = list(dict.fromkeys(events or WEBHOOK_EVENTS))
        unknown = [e for e in chosen if e not in WEBHOOK_EVENTS]
        if unknown or not chosen:
            raise InvalidInput(
                "unknown events",
                {"fields": {"events": [f"each one of {', '.join(WEBHOOK_EVENTS)}"]}},
            )
        if len(url) > 2000:
            raise InvalidInput("the webhook URL is too long")
        self.sender.check_url(url)
        if len(self.repo.list_endpoints(actor.user_id)) >= MAX_ENDPOINTS:
            raise InvalidInput(f"at most {MAX_ENDPOINTS} webhooks per user")
        secret = _new_secret()
        return self.repo.add_endpoint(
            WebhookEndpoint(
                id=uuid.uuid4().hex, owner_id=actor.user_id, url=url, events=chosen, secret=secret
            )
        )

    def endpoint(self, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
        found = self.repo.get_endpoint(endpoint_id) if len(endpoint_id) == 32 else None
        if found is None or not actor.can_access(found.owner_id):
            raise NotFound("webhook not found")
        return found

    def endpoints(self, actor: Principal) -> list[WebhookEndpoint]:
        return self.repo.list_endpoints(actor.user_id)

    def delete(self, actor: Principal, endpoint_id: str) -> None:
        self.repo.delete_endpoint(self.endpoint(actor, endpoint_id).id)

    def deliveries(
        self, actor: Principal, endpoint_id: str, limit: int = 100
    ) -> list[WebhookDelivery]:
        return self.repo.list_deliveries(self.endpoint(actor, endpoint_id).id, limit)

    def redeliver(self, actor: Principal, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
        """Queue a message again; TooManyRequests past the user's redelivery rate."""
        limits = self.limits
        wait = self.limiter.hit(
            limits.redeliveries, limits.redelivery_window, f"webhook-redeliver:{actor.user_id}"
        )
        if wait:
            raise TooManyRequests("too many redeliveries; try again later", wait)
        endpoint = self.endpoint(actor, endpoint_id)
        delivery = self.repo.get_delivery(delivery_id) if len(delivery_id) == 32 else None
        if delivery is None or delivery.endpoint_id != endpoint.id:
            raise NotFound("delivery not found")
        self.repo.update_delivery(
            delivery.id, {"failed_at": None, "delivered_at": None, "next_retry_at": utcnow()}
        )
        # Claimed for the message queued here: a retry chain still waiting sends nothing more.
        holder, now = uuid.uuid4().hex, utcnow()
        self.repo.claim_delivery(delivery.id, holder, now + SENDING, now, force=True)
        self.queue.enqueue_delivery(delivery.id, holder)
        found = self.repo.get_delivery(delivery.id)
        assert found is not None
        return found

    # --- a job's own webhook_url, signed with the account's secret ---------------------------

    def check_job_url(self, url: str | None) -> None:
        """InvalidInput (422) unless url may receive a job's events: http(s), at most 2000
        characters, every address public (the same guard as a registered webhook)."""
        if url is None:
            return
        if len(url) > 2000:
            raise InvalidInput(
                "the webhook URL is too long", {"fields": {"webhook_url": ["too long"]}}
            )
        try:
            self.sender.check_url(url)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, {"fields": {"webhook_url": [exc.message]}}) from None

    def signing_secret(self, actor: Principal, rotate: bool = False) -> str:
        """The secret that signs the messages to your jobs' own webhook_url: made on first
        use; `rotate` replaces it (messages sent afterwards use the new one)."""
        return self.repo.signing_secret(actor.user_id, _new_secret(), replace=rotate)

    def job_deliveries(self, actor: Principal, job: Job) -> list[WebhookDelivery]:
        """The messages sent to a job's own webhook_url (none when it has none)."""
        endpoint = self.repo.endpoint_of_job(job.id)
        if endpoint is None or not actor.can_access(endpoint.owner_id):
            return []
        return self.repo.list_deliveries(endpoint.id, 100)

    def _job_endpoint(self, job: Job) -> WebhookEndpoint | None:
        if not job.webhook_url:
            return None
        return self.repo.job_endpoint(
            WebhookEndpoint(
                id=hashlib.sha256(f"job:{job.id}".encode()).hexdigest()[:32],
                owner_id=job.owner_id,
                url=job.webhook_url,
                events=list(WEBHOOK_EVENTS),
                secret="",  # the account's signing secret, read when each message is sent
                job_id=job.id,
            )
        )

    # --- events, from the workers -----------------------------------------------------------

    def emit(self, job_id: str, event: str) -> list[str]:
        """One delivery per subscribed endpoint, made once whatever the number of calls;
        returns the deliveries queued."""
        job = self.jobs.get(job_id)
        if job is None:
            return []
        queued: list[str] = []
        receivers = self.repo.endpoints_for(job.owner_id, event)
        own = self._job_endpoint(job)
        if own is not None and own.disabled_at is None:
            receivers.append(own)
        for endpoint in receivers:
            delivery_id = hashlib.sha256(f"{endpoint.id}:{job_id}:{event}".encode()).hexdigest()
            data = job_json(job)  # the job as GET /jobs/<id> shows it
            if event == "job.succeeded":
                data["download_url"] = self.link(job)
            body = json.dumps(
                {"type": event, "timestamp": _iso(utcnow()), "data": data},
                default=str,
                separators=(",", ":"),
            )
            inserted = self.repo.add_delivery(
                WebhookDelivery(
                    id=delivery_id[:32],
                    endpoint_id=endpoint.id,
                    job_id=job_id,
                    event=event,
                    body=body,
                )
            )
            existing = self.repo.get_delivery(delivery_id[:32])
            if inserted or (
                existing is not None and existing.attempts == 0 and existing.delivered_at is None
            ):
                self.queue.enqueue_delivery(delivery_id[:32])
                queued.append(delivery_id[:32])
        return queued

    def deliver(self, delivery_id: str, holder: str | None = None) -> str:
        """One attempt: 'delivered', 'disabled' (410) or 'skipped'; RetryLater otherwise, Busy
        when the receiver or its owner already has its share of attempts in flight.

        The sender first claims the delivery (`holder`: the task, the same through its
        retries), so a delivery queued twice (an event emitted again while the first message
        waited) is sent by one task, with one retry schedule."""
        delivery = self.repo.get_delivery(delivery_id)
        if delivery is None or delivery.delivered_at is not None or delivery.failed_at is not None:
            return "skipped"
        now = utcnow()
        if not self.repo.claim_delivery(
            delivery_id, holder or uuid.uuid4().hex, now + SENDING, now
        ):
            return "skipped"
        endpoint = self.repo.get_endpoint(delivery.endpoint_id)
        if endpoint is None or endpoint.disabled_at is not None:
            self.repo.update_delivery(
                delivery.id,
                {
                    "failed_at": utcnow(),
                    "last_error": "the webhook is disabled",
                    "next_retry_at": None,
                },
            )
            return "skipped"
        secret = endpoint.secret
        if endpoint.per_job:  # the secret in force now: a rotation applies to retries too
            secret = self.repo.signing_secret(endpoint.owner_id, _new_secret())
        shares = {
            f"webhook-endpoint:{endpoint.id}": self.limits.per_endpoint,
            f"webhook-owner:{endpoint.owner_id}": self.limits.per_owner,
        }
        slot = self.slots.acquire(shares, self.limits.slot_ttl)
        if slot is None:
            raise Busy("the receiver has its share of deliveries in flight")
        attempt: dict[str, Any] = {"attempts": delivery.attempts + 1}
        try:
            status = self.sender.send(endpoint.url, secret, delivery.msg_id, delivery.body)
        except WebhookError as exc:
            attempt.update(last_status=None, last_error=str(exc)[:200])
            self.repo.update_delivery(delivery.id, attempt)
            raise RetryLater(str(exc)) from None
        finally:
            self._release(list(shares), slot)
        attempt.update(last_status=status, last_error=None)
        if 200 <= status < 300:
            self.repo.update_delivery(
                delivery.id, {**attempt, "delivered_at": utcnow(), "next_retry_at": None}
            )
            self.metrics.webhook("delivered")
            return "delivered"
        if status == 410:
            self.repo.disable_endpoint(endpoint.id)
            self.repo.update_delivery(
                delivery.id, {**attempt, "failed_at": utcnow(), "next_retry_at": None}
            )
            self.metrics.webhook("disabled")
            log.info("webhook %s answered 410: disabled", endpoint.id)
            return "disabled"
        self.repo.update_delivery(delivery.id, attempt)
        raise RetryLater(f"the receiver answered {status}")

    def retry_at(self, delivery_id: str, delay: float, holder: str | None = None) -> None:
        """Record when the next attempt comes; the holder keeps its claim until then."""
        self.metrics.webhook("retry")
        now = utcnow()
        self.repo.update_delivery(delivery_id, {"next_retry_at": now + timedelta(seconds=delay)})
        if holder is not None:
            self.repo.claim_delivery(
                delivery_id, holder, now + timedelta(seconds=delay) + SENDING, now
            )

    def _release(self, keys: list[str], slot: str) -> None:
        try:
            self.slots.release(keys, slot)
        except Unavailable:  # the attempt's outcome still counts; the slot expires by itself
            log.warning(
                "could not release a webhook slot; it frees itself within %.0f s",
                self.limits.slot_ttl,
            )

    def wait_turn(self, delivery_id: str, delay: float, holder: str) -> None:
        """A Busy delivery comes back after delay seconds; its holder keeps the claim."""
        self.metrics.webhook("deferred")
        now = utcnow()
        self.repo.update_delivery(delivery_id, {"next_retry_at": now + timedelta(seconds=delay)})
        self.repo.claim_delivery(delivery_id, holder, now + timedelta(seconds=delay) + SENDING, now)

    def gave_up(self, delivery_id: str) -> None:
        self.metrics.webhook("failed")
        self.repo.update_delivery(delivery_id, {"failed_at": utcnow(), "next_retry_at": None})


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat()
