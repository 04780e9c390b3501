"""Webhook deliveries on the real MariaDB and a loopback receiver: a delivery queued twice is
sent by one task, with one retry schedule; a manual redelivery takes over from a waiting one."""

from __future__ import annotations

import uuid

import pytest

from core.adapters.webhook_http import HttpWebhookSender
from core.domain import NewUser, WebhookDelivery, WebhookEndpoint
from core.ports import NullMetrics
from core.services.webhooks import RetryLater, Webhooks
from tests.support.receiver import Receiver


class Queue:
    def __init__(self):
        self.deliveries: list[tuple[str, str | None]] = []

    def enqueue_delivery(self, delivery_id, holder=None):
        self.deliveries.append((delivery_id, holder))


@pytest.fixture
def setup(container):
    suffix = uuid.uuid4().hex[:8]
    owner = container.user_repo.add(
        NewUser(name=f"hook-{suffix}", email=f"{suffix}@example.com", password_hash="$argon2id$x")
    )
    receiver = Receiver(status=[500, 204])
    hooks = container.webhook_repo
    endpoint = hooks.add_endpoint(
        WebhookEndpoint(
            id=uuid.uuid4().hex,
            owner_id=owner.id,
            url=receiver.url,
            events=["job.succeeded"],
            secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
    )
    delivery = WebhookDelivery(
        id=uuid.uuid4().hex,
        endpoint_id=endpoint.id,
        job_id=uuid.uuid4().hex,
        event="job.succeeded",
        body="{}",
    )
    assert hooks.add_delivery(delivery)
    queue = Queue()
    service = Webhooks(
        hooks,
        HttpWebhookSender(allow_private=True),
        queue,  # type: ignore[arg-type]
        container.job_repo,
        render=lambda job: {},
        link=lambda job: None,
        metrics=NullMetrics(),
    )
    yield service, delivery, receiver, queue, owner
    receiver.close()


def test_a_delivery_queued_twice_is_sent_by_one_task(setup):
    service, delivery, receiver, _, _ = setup
    with pytest.raises(RetryLater):
        service.deliver(delivery.id, "first")  # the receiver answers 500
    service.retry_at(delivery.id, 60.0, "first")  # its retry comes in a minute
    assert service.deliver(delivery.id, "second") == "skipped"  # a duplicate message
    assert len(receiver.received) == 1
    assert service.deliver(delivery.id, "first") == "delivered"  # the retry
    assert service.deliver(delivery.id, "second") == "skipped"
    assert len(receiver.received) == 2


def test_a_manual_redelivery_takes_over_from_a_waiting_retry(setup):
    service, delivery, receiver, queue, owner = setup
    with pytest.raises(RetryLater):
        service.deliver(delivery.id, "chain")
    service.retry_at(delivery.id, 3600.0, "chain")
    from core.domain import Principal, Role

    service.redeliver(Principal(owner.id, Role.USER), delivery.endpoint_id, delivery.id)
    [(_, holder)] = queue.deliveries
    assert holder and holder != "chain"
    assert service.deliver(delivery.id, "chain") == "skipped"  # the old chain stops
    assert service.deliver(delivery.id, holder) == "delivered"
    assert len(receiver.received) == 2
