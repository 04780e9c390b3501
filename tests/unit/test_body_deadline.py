"""The request-body deadline on its own: the rule (no gap of T seconds, at least R bytes a
second after the first T), over a fake clock, and the socket side (a stalled peer, a
trickling peer) over a real socket pair."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

from api.body_deadline import ABANDON, MAX_READ, BodyTimeout, DeadlineInput
from tests.support.wait import scaled


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Paced(io.RawIOBase):
    """A body whose every read returns `step` bytes and advances the clock by `seconds`."""

    def __init__(self, clock: Clock, size: int, step: int, seconds: float):
        self.clock, self.left, self.step, self.seconds = clock, size, step, seconds

    def read(self, size: int = -1) -> bytes:
        self.clock.now += self.seconds
        n = min(self.step, self.left, MAX_READ if size < 0 else size)
        self.left -= n
        return b"x" * n


def drain(body: DeadlineInput) -> int:
    total = 0
    while chunk := body.read(4096):
        total += len(chunk)
    return total


def test_a_body_at_the_minimum_rate_arrives_whole():
    clock = Clock()
    # 1000 bytes a second, as slow as allowed, for 50 s
    body = DeadlineInput(Paced(clock, 50_000, 1000, 1.0), 10, 1000, clock=clock)
    assert drain(body) == 50_000


def test_a_body_under_the_minimum_rate_is_cut_off_and_abandoned():
    clock = Clock()
    environ: dict = {}
    body = DeadlineInput(Paced(clock, 50_000, 500, 1.0), 10, 1000, environ=environ, clock=clock)
    with pytest.raises(BodyTimeout):
        drain(body)
    assert 10 < clock.now - 1000 < 25  # cut once the first 10 s of grace were used up
    assert environ[ABANDON] is True
    with pytest.raises(BodyTimeout):  # and it stays cut off
        body.read(1)


def test_a_slow_start_within_the_grace_is_fine():
    clock = Clock()
    body = DeadlineInput(Paced(clock, 10, 1, 0.9), 10, 1000, clock=clock)  # 1 B per 0.9 s
    assert drain(body) == 10


def test_read_all_reads_everything_in_bounded_steps():
    clock = Clock()
    stream = Paced(clock, 3 * MAX_READ + 5, 10 * MAX_READ, 0.0)
    seen = []
    original = stream.read
    stream.read = lambda size=-1: seen.append(size) or original(size)
    body = DeadlineInput(stream, 10, 1000, clock=clock)
    assert len(body.read()) == 3 * MAX_READ + 5
    assert max(seen) == MAX_READ


def test_readline_stops_at_the_end_of_a_line():
    body = DeadlineInput(io.BytesIO(b"one\ntwo\n"), 10, 1000)
    assert body.readline() == b"one\n" and list(body) == [b"two\n"]


@pytest.fixture
def pair():
    """A connected pair; the client end closes after 15 s whatever happens, so a read the
    deadline fails to stop ends (and its test fails) instead of hanging."""
    server, client = socket.socketpair()
    bound = threading.Timer(15, lambda: client.shutdown(socket.SHUT_RDWR))
    bound.start()
    yield server, client
    bound.cancel()
    server.close()
    client.close()


def test_a_stalled_peer_is_cut_off_after_the_idle_timeout(pair):
    server, client = pair
    client.sendall(b"12345")
    body = DeadlineInput(server.makefile("rb"), 0.3, 1000, server)
    started = time.monotonic()
    with pytest.raises(BodyTimeout):
        body.read(100_000)  # due by the average only after 100 s: the gap is what ends it
    assert 0.25 < time.monotonic() - started < 3
    assert server.gettimeout() is None  # the socket is left as the server had it


def test_a_trickling_peer_is_cut_off_inside_one_long_read(pair):
    """One byte every 0.1 s never leaves a gap of 0.5 s, yet a read of 2000 bytes at
    1000 B/s is due after 0.5 + 2 s: the watchdog stops it then, not after 200 s."""
    server, client = pair
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            try:
                client.send(b"x")
            except OSError:
                return
            time.sleep(0.1)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    body = DeadlineInput(server.makefile("rb"), 0.5, 1000, server)
    started = time.monotonic()
    try:
        with pytest.raises(BodyTimeout):
            body.read(2000)
    finally:
        stop.set()
    assert 2 < time.monotonic() - started < 10


def test_the_watchdog_forgets_reads_that_ended_in_time():
    from api.body_deadline import Watchdog

    watchdog = Watchdog()
    for n in range(10_000):  # a fast upload: each read ends long before its deadline
        watchdog.forget(watchdog.watch(time.monotonic() + 3600 + n, lambda: None))
    assert len(watchdog._heap) <= 64 + 1
    fired = threading.Event()
    watchdog.watch(time.monotonic() + 0.05, fired.set)
    assert fired.wait(timeout=scaled(5))
