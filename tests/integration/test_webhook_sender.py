"""The HTTP webhook sender against real receivers on loopback: signatures verified with the
standardwebhooks library itself; failing, slow, redirecting and 410 receivers."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.adapters import http as webhook_http
from core.adapters.http import HttpWebhookSender
from core.ports.webhooks import WebhookError
from tests.support.receiver import Receiver
from tests.support.wait import wait_for

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


# --- the connection goes where the guard said (DNS rebinding) ------------------------------


@pytest.fixture
def rebinding_dns(monkeypatch):
    """The system resolver, with names the test answers: each name's answers in turn, the last
    one repeated (a rebinding name answers a good address first, then an internal one)."""
    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}
    asked: dict[str, int] = {}

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, family, type, proto, flags)
        turn = answers[name][min(asked.get(name, 0), len(answers[name]) - 1)]
        asked[name] = asked.get(name, 0) + 1
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))
            for address in turn
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _pair_on_one_port(receivers, **kw):
    """A receiver on 127.0.0.2 (the one the guard approves) and an internal service on
    127.0.0.1, on the same port."""
    for _ in range(20):
        approved = receivers(host="127.0.0.2", **kw)
        try:
            internal = receivers(host="127.0.0.1", port=approved.port)
        except OSError:
            continue
        return approved, internal
    raise AssertionError("no port free on both loopback addresses")


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_name_rebound_to_an_internal_address_after_the_check_gets_no_connection(
    receivers, rebinding_dns, monkeypatch, allow_private
):
    approved, internal = _pair_on_one_port(receivers)
    # Without allow_private, 127.0.0.2 stands for a public address: the test's only one.
    real_is_public = webhook_http.is_public
    monkeypatch.setattr(webhook_http, "is_public", lambda a: a == "127.0.0.2" or real_is_public(a))
    rebinding_dns["rebind.test"] = [["127.0.0.2"], ["127.0.0.1"]]
    url = f"http://rebind.test:{approved.port}/hook?x=1"

    status = HttpWebhookSender(allow_private=allow_private).send(url, SECRET, "m", "{}")
    assert status == 204
    assert internal.connections == 0 and internal.received == []
    [(headers, _)] = approved.received
    assert headers["host"] == f"rebind.test:{approved.port}" and approved.paths == ["/hook?x=1"]
    # And with the name pointing inside from the start, nothing is sent at all.
    if not allow_private:
        with pytest.raises(WebhookError, match="public"):
            HttpWebhookSender().send(url, SECRET, "m", "{}")
        assert internal.connections == 0


def test_only_approved_addresses_are_tried_in_turn(receivers, rebinding_dns):
    approved, internal = _pair_on_one_port(receivers)
    # 127.0.0.3 refuses the connection; the next approved address takes the delivery.
    rebinding_dns["two.test"] = [["127.0.0.3", "127.0.0.2"], ["127.0.0.1"]]
    url = f"http://two.test:{approved.port}/hook"
    assert HttpWebhookSender(allow_private=True).send(url, SECRET, "m", "{}") == 204
    assert len(approved.received) == 1 and internal.connections == 0


def test_environment_proxies_are_not_used(receivers, monkeypatch):
    proxy, receiver = receivers(), receivers()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url.removesuffix("/hook"))
    assert HttpWebhookSender(allow_private=True).send(receiver.url, SECRET, "m", "{}") == 204
    assert proxy.connections == 0 and len(receiver.received) == 1


@pytest.fixture(scope="module")
def tls_ca():
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


def _tls_receiver(receivers, ca, name):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return receivers(tls=context)


def _client_context(ca):
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_https_to_a_pinned_address_keeps_the_name_for_sni_and_the_certificate(
    receivers, tls_ca, rebinding_dns
):
    receiver = _tls_receiver(receivers, tls_ca, "hooks.test")
    names = []
    receiver.server.tls.sni_callback = lambda sock, name, ctx: names.append(name)
    rebinding_dns["hooks.test"] = [["127.0.0.1"], ["127.0.0.9"]]
    sender = HttpWebhookSender(allow_private=True, ssl_context=_client_context(tls_ca))
    assert sender.send(f"https://hooks.test:{receiver.port}/hook", SECRET, "m", "{}") == 204
    [(headers, _)] = receiver.received
    assert names == ["hooks.test"] and headers["host"] == f"hooks.test:{receiver.port}"


def test_https_with_a_certificate_for_another_name_is_refused(receivers, tls_ca, rebinding_dns):
    receiver = _tls_receiver(receivers, tls_ca, "other.test")
    rebinding_dns["hooks.test"] = [["127.0.0.1"]]
    sender = HttpWebhookSender(allow_private=True, ssl_context=_client_context(tls_ca))
    with pytest.raises(WebhookError, match="could not connect"):
        sender.send(f"https://hooks.test:{receiver.port}/hook", SECRET, "m", "{}")
    with pytest.raises(WebhookError, match="could not connect"):  # an unknown CA, too
        HttpWebhookSender(allow_private=True).send(
            f"https://127.0.0.1:{receiver.port}/hook", SECRET, "m", "{}"
        )
    assert receiver.received == []


# --- one deadline for the whole exchange ---------------------------------------------------


def _trickle(prefix: bytes, then: bytes, every: float = 0.2, for_seconds: float = 30.0):
    """An answer that sends prefix, then one byte of `then` every `every` s (repeated)."""

    def respond(handler):
        handler.wfile.write(prefix)
        handler.wfile.flush()
        end = time.monotonic() + for_seconds
        i = 0
        while time.monotonic() < end:
            time.sleep(every)
            handler.wfile.write(then[i % len(then) : i % len(then) + 1])
            handler.wfile.flush()
            i += 1

    return respond


TRICKLES = {
    "status line": (b"", b"HTTP/1.1 200"),
    "headers": (b"HTTP/1.1 200 OK\r\n", b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaa"),
    "body": (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x"),
}


@pytest.mark.parametrize("phase", list(TRICKLES))
def test_a_receiver_trickling_its_answer_is_cut_at_the_deadline(receivers, phase):
    prefix, then = TRICKLES[phase]
    receiver = receivers(respond=_trickle(prefix, then))
    started = time.monotonic()
    with pytest.raises(WebhookError, match="no answer within 1 s"):
        HttpWebhookSender(allow_private=True, timeout=1.0).send(receiver.url, SECRET, "m", "{}")
    elapsed = time.monotonic() - started
    print(f"{phase}: cut after {elapsed:.2f} s")
    assert elapsed < 4.0  # the receiver would go on for 30 s


def test_a_tls_handshake_trickled_is_cut_at_the_deadline():
    """A listener that answers the TLS ClientHello one byte at a time."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            record = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000
            for byte in record:
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(WebhookError, match="no answer within 1 s|could not connect"):
            HttpWebhookSender(allow_private=True, timeout=1.0).send(
                f"https://127.0.0.1:{port}/hook", SECRET, "m", "{}"
            )
        assert time.monotonic() - started < 4.0
    finally:
        stop.set()
        listener.close()


# --- the answer's body is not read into memory ---------------------------------------------

_MIB = 1024 * 1024
_ZEROS = bytes(64 * 1024)  # made before tracing starts: the receiver's writes allocate nothing


def _flood(headers: bytes, total: int, chunked: bool = False):
    def respond(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n")
        sent = 0
        try:
            while sent < total:
                if chunked:
                    handler.wfile.write(b"10000\r\n" + _ZEROS + b"\r\n")
                else:
                    handler.wfile.write(_ZEROS)
                sent += len(_ZEROS)
        except OSError:
            pass
        handler.server.flooded = sent

    return respond


def _gzip_bomb(size: int) -> bytes:
    import gzip
    import io

    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as packed:
        for _ in range(size // len(_ZEROS)):
            packed.write(_ZEROS)
    return out.getvalue()


_BOMB = _gzip_bomb(64 * _MIB)  # about 64 KiB on the wire
FLOODS = {
    "64 MiB with a length": lambda: _flood(b"Content-Length: %d\r\n" % (64 * _MIB), 64 * _MIB),
    "64 MiB chunked": lambda: _flood(b"Transfer-Encoding: chunked\r\n", 64 * _MIB, chunked=True),
    "a gzip bomb": lambda: _bomb_answer,
}


def _bomb_answer(handler):
    handler.wfile.write(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(_BOMB)
    )
    try:
        handler.wfile.write(_BOMB)
    except OSError:
        pass


@pytest.mark.parametrize("answer", list(FLOODS))
def test_a_huge_answer_is_not_read_into_memory(receivers, answer):
    import tracemalloc

    receiver = receivers(respond=FLOODS[answer]())
    sender = HttpWebhookSender(allow_private=True, timeout=30.0)
    tracemalloc.start()
    try:
        status = sender.send(receiver.url, SECRET, "m", "{}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{answer}: peak {peak / 1024:.0f} KiB traced while sending")
    assert status == 200
    assert peak < 2 * _MIB
    if answer != "a gzip bomb":  # and the rest was never read: the receiver could not send it
        wait_for(lambda: hasattr(receiver.server, "flooded"), timeout=30, what="the receiver")
        flooded = receiver.server.flooded
        assert flooded < 32 * _MIB


def test_an_answer_with_endless_headers_is_refused(receivers):
    def respond(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for i in range(20000):
                handler.wfile.write(b"X-Pad-%d: %s\r\n" % (i, b"a" * 100))
        except OSError:
            pass

    receiver = receivers(respond=respond)
    with pytest.raises(WebhookError):
        HttpWebhookSender(allow_private=True, timeout=30.0).send(receiver.url, SECRET, "m", "{}")
