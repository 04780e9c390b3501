"""A deadline on reading request bodies (WSGI middleware), as Apache's mod_reqtimeout
`body=T,MinRate=R` sets one: no gap of T seconds without a byte, and after the first T
seconds at least R bytes a second on average. A body that breaks either is cut off with 408
and its connection closed, so a client that stops (or trickles) cannot hold a thread.

gunicorn's gthread workers read a body in the request's thread and have no deadline of their
own. The gap is the socket's timeout for each read (`gunicorn.socket` in the environ); the
average is checked between reads and, inside a read (gunicorn reads until it has all it was
asked for), by a watchdog thread that shuts the socket's read side once even the whole read
would come too late. Shutting the read side also spares the thread gunicorn's drain of the
unread body, and its main loop the lingering close, on a client that sends nothing more.
Without a socket (the test client) only the average is checked, between reads.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from werkzeug.exceptions import RequestTimeout

log = logging.getLogger(__name__)

ABANDON = "vid2mp3.abandon_body"  # environ key: the app answers without reading the body
MAX_READ = 256 * 1024  # the most one read asks of the server at once


class BodyTimeout(RequestTimeout):
    description = "the request body did not arrive in time"


class BodyDeadline:
    """Wraps a WSGI app: every request body is read under the deadline."""

    def __init__(self, app: Callable[..., Any], idle_seconds: float, min_rate: int):
        self.app = app
        self.idle_seconds = idle_seconds
        self.min_rate = min_rate

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        sock = environ.get("gunicorn.socket")
        if not isinstance(sock, socket.socket):
            sock = None
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = DeadlineInput(
                stream, self.idle_seconds, self.min_rate, sock, environ
            )
        body = self.app(environ, start_response)
        if sock is not None and environ.get(ABANDON):
            return _CloseThen(body, lambda: shut_reading(sock))
        return body


def abandon_body(environ: dict[str, Any]) -> None:
    """Answer without reading the body: the connection closes once the answer is sent, and
    nothing more is read from the client (gunicorn would otherwise drain it)."""
    environ[ABANDON] = True


def shut_reading(sock: socket.socket) -> None:
    """Nothing more is read from this client: reads return at once with nothing."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:  # the client is gone already
        pass


class DeadlineInput:
    """wsgi.input under the deadline; BodyTimeout (408) once the body is late."""

    def __init__(
        self,
        stream: Any,
        idle_seconds: float,
        min_rate: int,
        sock: socket.socket | None = None,
        environ: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._stream = stream
        self._idle = idle_seconds
        self._min_rate = min_rate
        self._sock = sock
        self._environ = environ if environ is not None else {}
        self._clock = clock
        self._started = clock()
        self._received = 0
        self.timed_out = False

    def _due(self, received: int) -> float:
        """When the body is late if only `received` bytes have come by then."""
        return self._started + self._idle + received / self._min_rate

    def read(self, size: int | None = -1) -> bytes:
        """Up to size bytes (all when size is None or negative), in reads of at most
        MAX_READ, each under the deadline."""
        return self._in_steps(self._stream.read, size, lambda data: False)

    def readline(self, size: int | None = -1) -> bytes:
        return self._in_steps(self._stream.readline, size, lambda data: data.endswith(b"\n"))

    def _in_steps(
        self, read: Callable[[int], bytes], size: int | None, done: Callable[[bytes], bool]
    ) -> bytes:
        left = -1 if size is None or size < 0 else size
        if left == 0:
            return b""
        if 0 < left <= MAX_READ:
            return self._timed(read, left)
        pieces = []
        while left != 0:
            data = self._timed(read, MAX_READ if left < 0 else min(left, MAX_READ))
            if not data:
                break
            pieces.append(data)
            if left > 0:
                left -= len(data)
            if done(data):
                break
        return b"".join(pieces)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _timed(self, read: Callable[[int], bytes], size: int) -> bytes:
        if self.timed_out:
            raise BodyTimeout()
        if self._clock() > self._due(self._received):
            self._expire()
        watch = None
        prior: float | None = None
        if self._sock is not None:
            prior = self._sock.gettimeout()
            self._sock.settimeout(self._idle)
            watch = _watchdog().watch(self._due(self._received + size), self._late)
        try:
            data = read(size)
        except (socket.timeout, TimeoutError):
            self._expire()
        except (OSError, ValueError):
            if self.timed_out:  # the watchdog shut the socket under this read
                raise BodyTimeout() from None
            raise
        finally:
            if watch is not None:
                _watchdog().forget(watch)
            if self._sock is not None:
                try:
                    self._sock.settimeout(prior)
                except OSError:
                    pass
        if self.timed_out:
            log.info("request body cut off after %d bytes: it came too slowly", self._received)
            raise BodyTimeout()
        self._received += len(data)
        if self._sock is None and data and self._clock() > self._due(self._received):
            self._expire()
        return data

    def _late(self) -> None:
        """From the watchdog: the read in progress cannot be in time any more."""
        self.timed_out = True
        abandon_body(self._environ)
        if self._sock is not None:
            shut_reading(self._sock)

    def _expire(self) -> Any:
        self.timed_out = True
        abandon_body(self._environ)
        if self._sock is not None:
            shut_reading(self._sock)
        log.info("request body cut off after %d bytes: it came too slowly", self._received)
        raise BodyTimeout()


class _CloseThen:
    """A response body that runs `after` once the server has sent it and closed it."""

    def __init__(self, body: Iterable[bytes], after: Callable[[], None]):
        self._body = body
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._after()


class Watchdog:
    """One thread per process: calls each watched callback once its deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def watch(self, deadline: float, callback: Callable[[], None]) -> int:
        with self._cond:
            self._start()
            token = next(self._ids)
            self._callbacks[token] = callback
            if not self._heap or deadline < self._heap[0][0]:
                self._cond.notify()  # the thread sleeps until the earliest deadline
            heapq.heappush(self._heap, (deadline, token))
            return token

    def forget(self, token: int) -> None:
        with self._cond:
            self._callbacks.pop(token, None)
            if len(self._heap) > 2 * len(self._callbacks) + 64:
                # reads that ended in time leave their far deadlines behind: drop them
                self._heap = [entry for entry in self._heap if entry[1] in self._callbacks]
                heapq.heapify(self._heap)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="body-deadline", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            due: list[Callable[[], None]] = []
            with self._cond:
                now = time.monotonic()
                while self._heap and (
                    self._heap[0][0] <= now or self._heap[0][1] not in self._callbacks
                ):
                    _, token = heapq.heappop(self._heap)
                    callback = self._callbacks.pop(token, None)
                    if callback is not None:
                        due.append(callback)
                if not due:
                    wait = self._heap[0][0] - now if self._heap else None
                    self._cond.wait(timeout=wait)
                    continue
            for callback in due:
                try:
                    callback()
                except Exception:  # a watchdog never dies of one request
                    log.exception("body deadline callback failed")


_WATCHDOG = Watchdog()


def _watchdog() -> Watchdog:
    return _WATCHDOG
