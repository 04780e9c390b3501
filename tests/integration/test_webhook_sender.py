"""The HTTP webhook sender against real receivers on loopback: signatures verified with the
standardwebhooks library itself; failing, slow, redirecting and 410 receivers."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.adapters.webhook_http import HttpWebhookSender
from core.ports import WebhookError
from tests.support.receiver import Receiver

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 random bytes


@pytest.fixture
def receivers():
    made = []

    def make(**kw):
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def test_a_delivery_is_signed_per_standard_webhooks(receivers):
    receiver = receivers()
    body = json.dumps({"type": "job.succeeded", "data": {"id": "j1"}})
    status = HttpWebhookSender(allow_private=True).send(receiver.url, SECRET, "msg_job1", body)
    assert status == 204
    [(headers, raw)] = receiver.received
    assert headers["webhook-id"] == "msg_job1"
    assert Webhook(SECRET).verify(raw, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(raw, headers)


@pytest.mark.parametrize("status", [410, 500, 302])
def test_the_receivers_status_is_reported_and_redirects_not_followed(receivers, status):
    target = receivers()
    receiver = receivers(status=status, location=target.url)
    assert HttpWebhookSender(allow_private=True).send(receiver.url, SECRET, "m", "{}") == status
    assert target.received == []


def test_a_slow_receiver_times_out(receivers):
    receiver = receivers(delay=2.0)
    started = time.monotonic()
    with pytest.raises(WebhookError, match="no answer"):
        HttpWebhookSender(allow_private=True, timeout=0.5).send(receiver.url, SECRET, "m", "{}")
    assert time.monotonic() - started < 1.8


def test_a_dead_receiver_and_a_private_one_get_no_answer(receivers):
    receiver = receivers()
    url = receiver.url
    receiver.close()
    with pytest.raises(WebhookError, match="could not connect"):
        HttpWebhookSender(allow_private=True).send(url, SECRET, "m", "{}")
    live = receivers()
    with pytest.raises(WebhookError, match="public"):
        HttpWebhookSender(allow_private=False).send(live.url, SECRET, "m", "{}")
    assert live.received == []
