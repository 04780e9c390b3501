"""Webhook deliveries on the real MariaDB, Redis and loopback receivers: a delivery queued
twice is sent by one task, with one retry schedule; a manual redelivery takes over from a
waiting one; a receiver and a user get a bounded share of attempts in flight; manual
redeliveries are rate-limited."""

from __future__ import annotations

import threading
import uuid

import pytest

from core.adapters.http import HttpWebhookSender
from core.adapters.redis.slots import RedisSlots
from core.domain.accounts import NewUser, Principal, Role
from core.domain.webhooks import WebhookDelivery, WebhookEndpoint
from core.ports.metrics import NullMetrics
from core.services.webhooks import Busy, DeliveryLimits, RetryLater, Webhooks
from tests.support.receiver import Receiver
from tests.support.wait import wait_for

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Queue:
    def __init__(self):
        self.deliveries: list[tuple[str, str | None]] = []

    def enqueue_delivery(self, delivery_id, holder=None):
        self.deliveries.append((delivery_id, holder))


def new_owner(container):
    suffix = uuid.uuid4().hex[:8]
    return container.user_repo.add(
        NewUser(name=f"hook-{suffix}", email=f"{suffix}@example.com", password_hash="$argon2id$x")
    )


def new_endpoint(container, owner, url):
    return container.webhook_repo.add_endpoint(
        WebhookEndpoint(
            id=uuid.uuid4().hex, owner_id=owner.id, url=url, events=["job.succeeded"], secret=SECRET
        )
    )


def new_delivery(container, endpoint):
    delivery = WebhookDelivery(
        id=uuid.uuid4().hex,
        endpoint_id=endpoint.id,
        job_id=uuid.uuid4().hex,
        event="job.succeeded",
        body="{}",
    )
    assert container.webhook_repo.add_delivery(delivery)
    return delivery


def service_of(container, queue=None, **limits):
    return Webhooks(
        container.webhook_repo,
        HttpWebhookSender(allow_private=True, timeout=limits.pop("timeout", 30.0)),
        queue or Queue(),  # type: ignore[arg-type]
        container.job_repo,
        link=lambda job: None,
        metrics=NullMetrics(),
        slots=RedisSlots(container.redis, container.settings.redis_prefix + uuid.uuid4().hex),
        limiter=container.rate_limiter,
        limits=DeliveryLimits(**limits),
    )


@pytest.fixture
def receivers():
    made = []

    def make(**kw):
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def setup(container, receivers):
    owner = new_owner(container)
    receiver = receivers(status=[500, 204])
    delivery = new_delivery(container, new_endpoint(container, owner, receiver.url))
    queue = Queue()
    yield service_of(container, queue), delivery, receiver, queue, owner


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
    service.redeliver(Principal(owner.id, Role.USER), delivery.endpoint_id, delivery.id)
    [(_, holder)] = queue.deliveries
    assert holder and holder != "chain"
    assert service.deliver(delivery.id, "chain") == "skipped"  # the old chain stops
    assert service.deliver(delivery.id, holder) == "delivered"
    assert len(receiver.received) == 2


# --- one user's receivers get a bounded share of the attempts in flight ----------------------


def _attempt_all(service, deliveries, receivers):
    """service.deliver of each delivery, from threads, each started once the one before has
    reached a receiver or ended: ({delivery id: outcome}, the threads)."""
    outcomes: dict[str, str] = {}

    def one(delivery_id):
        try:
            outcomes[delivery_id] = service.deliver(delivery_id, f"task-{delivery_id}")
        except Busy:
            outcomes[delivery_id] = "busy"
        except RetryLater:
            outcomes[delivery_id] = "retry"

    threads = []
    for n, delivery in enumerate(deliveries, 1):
        threads.append(threading.Thread(target=one, args=(delivery.id,)))
        threads[-1].start()
        wait_for(
            lambda n=n: len(outcomes) + sum(len(r.received) for r in receivers) == n,
            timeout=30,
            what=f"delivery {n} to be sent or turned away",
        )
    return outcomes, threads


def test_a_slow_receiver_holds_at_most_its_share_and_the_rest_wait_their_turn(container, receivers):
    held = threading.Event()
    receiver = receivers(hold=held)
    owner = new_owner(container)
    endpoint = new_endpoint(container, owner, receiver.url)
    deliveries = [new_delivery(container, endpoint) for _ in range(6)]
    service = service_of(container, per_endpoint=2, per_owner=4)

    outcomes, threads = _attempt_all(service, deliveries, [receiver])
    assert sorted(outcomes.values()) == ["busy"] * 4
    assert receiver.peak == 2 and len(receiver.received) == 2
    for delivery in deliveries:  # waiting its turn is neither an attempt nor a failure
        row = container.webhook_repo.get_delivery(delivery.id)
        assert row.failed_at is None and row.delivered_at is None
        assert row.attempts == 0 or delivery.id not in outcomes
    held.set()
    for thread in threads:
        thread.join(30)
    # Their turn (the same task, later): each waiting delivery goes through.
    for delivery in deliveries:
        if outcomes[delivery.id] == "busy":
            assert service.deliver(delivery.id, f"task-{delivery.id}") == "delivered"
    assert len(receiver.received) == 6 and receiver.peak == 2
    assert all(container.webhook_repo.get_delivery(d.id).delivered_at for d in deliveries)


def test_one_users_many_receivers_leave_room_for_another_user(container, receivers):
    held = threading.Event()
    slow = [receivers(hold=held) for _ in range(4)]
    hog = new_owner(container)
    hog_deliveries = [
        new_delivery(container, new_endpoint(container, hog, receiver.url)) for receiver in slow
    ]
    service = service_of(container, per_endpoint=2, per_owner=2)
    outcomes, threads = _attempt_all(service, hog_deliveries, slow)
    assert sorted(outcomes.values()) == ["busy", "busy"]
    assert sum(len(r.received) for r in slow) == 2

    other_receiver = receivers()
    other = new_delivery(
        container, new_endpoint(container, new_owner(container), other_receiver.url)
    )
    assert service.deliver(other.id, uuid.uuid4().hex) == "delivered"
    assert len(other_receiver.received) == 1
    held.set()
    for thread in threads:
        thread.join(30)


def test_a_slot_whose_holder_died_frees_itself(container):
    slots = RedisSlots(container.redis, container.settings.redis_prefix + uuid.uuid4().hex)
    assert slots.acquire({"a": 1, "b": 5}, ttl=0.5)  # never released: its worker was killed
    assert slots.acquire({"a": 1}, ttl=30) is None
    assert slots.acquire({"b": 5, "a": 1}, ttl=30) is None
    token = wait_for(lambda: slots.acquire({"a": 1}, ttl=30), timeout=10, what="the slot")
    slots.release(["a"], token)
    assert slots.acquire({"a": 1}, ttl=30)


# --- manual redeliveries --------------------------------------------------------------------


def test_redeliveries_past_the_rate_get_429_with_retry_after(container, client, auth, receivers):
    user, headers = auth.new_user()
    other, other_headers = auth.new_user()
    paths = {}
    for who in (user, other):
        owner = container.user_repo.get(who["id"])
        endpoint = new_endpoint(container, owner, receivers().url)
        delivery = new_delivery(container, endpoint)
        paths[who["id"]] = f"/webhooks/{endpoint.id}/deliveries/{delivery.id}/redeliver"
    path = paths[user["id"]]
    limit = container.settings.webhook_redeliver_rate_limit  # 10/minute
    allowed = int(limit.split("/")[0])

    answers = [client.post(path, headers=headers) for _ in range(allowed + 10)]
    assert [a.status_code for a in answers[:allowed]] == [202] * allowed
    refused = answers[allowed:]
    assert {a.status_code for a in refused} == {429}
    assert refused[0].get_json()["code"] == "too_many_requests"
    assert 0 < int(refused[0].headers["Retry-After"]) <= 60
    # Another user's redeliveries are their own.
    assert client.post(paths[other["id"]], headers=other_headers).status_code == 202
