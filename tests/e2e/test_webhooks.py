"""Signed webhooks over real processes: a receiver on loopback verifies each message with the
standardwebhooks library; failing receivers are retried, a 410 disables the endpoint."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.support.jobs import upload, wait_job
from tests.support.receiver import Receiver
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def receivers():
    made = []

    def make(**kw):
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def register(user, url, events=None):
    body = {"url": url} if events is None else {"url": url, "events": events}
    made = user.post("/webhooks", json=body)
    assert made.status_code == 201, made.text
    return made.json()


def messages(receiver, secret, count=1, timeout=30):
    """The first `count` messages, each verified with standardwebhooks."""
    wait_for(lambda: len(receiver.received) >= count, timeout=timeout, what="webhook messages")
    return [
        (headers, Webhook(secret).verify(raw, headers))
        for headers, raw in receiver.received[:count]
    ]


def test_a_succeeded_job_is_told_once_with_a_signed_message(stack, new_user, clip, receivers):
    user, _ = new_user()
    receiver = receivers()
    hook = register(user, receiver.url)
    assert hook["secret"].startswith("whsec_") and hook["events"] == [
        "job.succeeded",
        "job.failed",
        "job.cancelled",
    ]
    assert "secret" not in user.get("/webhooks").json()[0]

    job = wait_job(user, upload(user, clip).json()["job_id"])
    [(headers, message)] = messages(receiver, hook["secret"])
    finished = datetime.fromisoformat(job["finished_at"]).timestamp()
    print(f"webhook arrived {receiver.times[0] - finished:.3f} s after the job finished")
    assert message["type"] == "job.succeeded" and message["timestamp"]
    data = message["data"]
    assert data["id"] == job["id"] and data["status"] == "done"
    # The job as GET /jobs/<id> shows it (one definition, core/services/job_json.py), plus the link.
    assert set(data) == set(job) | {"download_url"}
    assert data["mp3_size"] == job["mp3_size"]
    got = requests.get(data["download_url"], timeout=10)
    assert got.status_code == 200 and len(got.content) == job["mp3_size"]

    [delivery] = user.get(f"/webhooks/{hook['id']}/deliveries").json()
    assert delivery["webhook-id"] == headers["webhook-id"] and delivery["attempts"] == 1
    assert delivery["last_status"] == 204 and delivery["delivered_at"]
    # A second emission of the same outcome (a conversion delivered twice) makes nothing new.
    assert stack.container.webhooks.emit(job["id"], "job.succeeded") == []
    assert len(user.get(f"/webhooks/{hook['id']}/deliveries").json()) == 1

    again = user.post(f"/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 202
    [_, (headers2, _)] = messages(receiver, hook["secret"], count=2)
    assert headers2["webhook-id"] == headers["webhook-id"]


def test_a_failing_receiver_is_retried_until_it_answers(stack, new_user, clip, receivers):
    user, _ = new_user()
    receiver = receivers(status=[500, 503, 200])
    hook = register(user, receiver.url, ["job.succeeded"])
    wait_job(user, upload(user, clip).json()["job_id"])
    three = messages(receiver, hook["secret"], count=3)
    assert len({headers["webhook-id"] for headers, _ in three}) == 1
    delivered = wait_for(
        lambda: [
            d for d in user.get(f"/webhooks/{hook['id']}/deliveries").json() if d["delivered_at"]
        ],
        timeout=10,
        what="the delivery to be recorded",
    )
    assert delivered[0]["attempts"] == 3 and delivered[0]["last_status"] == 200


def test_a_410_disables_the_webhook(stack, new_user, clip, receivers):
    user, _ = new_user()
    receiver = receivers(status=410)
    hook = register(user, receiver.url)
    wait_job(user, upload(user, clip).json()["job_id"])
    wait_for(
        lambda: [
            d
            for d in user.get(f"/webhooks/{hook['id']}/deliveries").json()
            if d["failed_at"] and d["last_status"] == 410
        ],
        timeout=30,
        what="the delivery to be marked failed",
    )
    wait_for(
        lambda: user.get("/webhooks").json()[0]["disabled_at"],
        timeout=30,
        what="the webhook to be disabled",
    )
    wait_job(user, upload(user, clip).json()["job_id"])
    assert len(receiver.received) == 1  # nothing more after the 410


def test_cancel_and_failure_are_told(stack, new_user, media_dir, receivers, long_input):
    from tests.support import media

    user, _ = new_user()
    receiver = receivers()
    hook = register(user, receiver.url, ["job.cancelled", "job.failed"])
    running = upload(user, long_input).json()["job_id"]
    assert user.post(f"/jobs/{running}/cancel").status_code == 200
    broken = wait_job(user, upload(user, media.make_silent_video(media_dir)).json()["job_id"])
    assert broken["status"] == "failed"
    got = messages(receiver, hook["secret"], count=2)
    assert sorted((m["type"], m["data"]["id"]) for _, m in got) == sorted(
        [("job.cancelled", running), ("job.failed", broken["id"])]
    )
    assert all("download_url" not in m["data"] for _, m in got)


def test_webhooks_are_private_to_their_owner(stack, new_user, receivers):
    owner, _ = new_user()
    stranger, _ = new_user()
    hook = register(owner, receivers().url)
    assert stranger.get(f"/webhooks/{hook['id']}/deliveries").status_code == 404
    assert stranger.delete(f"/webhooks/{hook['id']}").status_code == 404
    assert owner.post("/webhooks", json={"url": "ftp://example.com/"}).status_code == 422
    assert (
        owner.post("/webhooks", json={"url": "http://x.org/", "events": ["job.x"]}).status_code
        == 422
    )
    assert owner.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert owner.get("/webhooks").json() == []


@pytest.mark.stores("directory")
def test_one_users_slow_receivers_leave_room_for_everyone_else(stack, new_user, clip, receivers):
    """A user with ten receivers that never answer gets WEBHOOK_OWNER_CONCURRENCY (4) of the
    webhooks worker's eight slots; another user's message goes through meanwhile, and the
    hog's deliveries past its share wait their turn (not attempts, not failures)."""
    settings = stack.settings
    share = settings.webhook_owner_concurrency
    assert share < settings.webhook_concurrency
    other, _ = new_user()
    fast = receivers()
    other_hook = register(other, fast.url, ["job.succeeded"])
    wait_job(other, upload(other, clip).json()["job_id"])
    messages(fast, other_hook["secret"])
    [first] = other.get(f"/webhooks/{other_hook['id']}/deliveries").json()

    hog, _ = new_user()
    held = threading.Event()
    slow = receivers(hold=held)
    hooks = [register(hog, f"{slow.url}/{n}", ["job.succeeded"]) for n in range(10)]
    wait_job(hog, upload(hog, clip).json()["job_id"])
    wait_for(lambda: slow.in_flight >= share, timeout=60, what="the hog's receivers to be busy")

    redelivered = other.post(f"/webhooks/{other_hook['id']}/deliveries/{first['id']}/redeliver")
    assert redelivered.status_code == 202
    # Well inside WEBHOOK_TIMEOUT_SECONDS (30): before any of the hog's attempts could end.
    wait_for(lambda: len(fast.received) >= 2, timeout=20, what="the other user's message")
    assert slow.in_flight >= 1 and slow.peak <= share

    def hog_deliveries():
        return [d for h in hooks for d in hog.get(f"/webhooks/{h['id']}/deliveries").json()]

    assert all(d["attempts"] == 0 and not d["failed_at"] for d in hog_deliveries())
    held.set()
    done = wait_for(
        lambda: (
            [d for d in hog_deliveries() if d["delivered_at"]] == hog_deliveries()
            and hog_deliveries()
        ),
        timeout=120,
        what="every one of the hog's deliveries, in turn",
    )
    assert len(done) == 10 and all(d["attempts"] == 1 and not d["failed_at"] for d in done)
    assert slow.peak <= share and len(slow.received) == 10
