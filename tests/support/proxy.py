"""A TCP forwarder the tests can cut and restore, to play a backing service going down."""

from __future__ import annotations

import socket
import threading
from typing import Callable

from devtools.processes import free_port


class Outage:
    """Listens on a free local port and forwards to target while up; down drops everything."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self) -> "Outage":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> None:
        """Stop listening and cut every open connection."""
        listener, self._listener = self._listener, None
        if listener:
            _close(listener)  # shutdown wakes the thread blocked in accept(); close alone won't
        with self._lock:
            for conn in list(self._connections):
                _close(conn)
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, upstream))
            for a, b, forward in ((client, upstream, self._forwarder()), (upstream, client, None)):
                threading.Thread(target=self._pipe, args=(a, b, forward), daemon=True).start()

    def _forwarder(self) -> Callable[[bytes, socket.socket], bool] | None:
        """How one connection's bytes from the client reach the target: None sends them all;
        a function gets each piece and the target's socket, and returns False to cut."""
        return None

    def _pipe(
        self,
        source: socket.socket,
        sink: socket.socket,
        forward: Callable[[bytes, socket.socket], bool] | None = None,
    ) -> None:
        try:
            while data := source.recv(65536):
                if forward is None:
                    sink.sendall(data)
                elif not forward(data, sink):
                    return  # cut: the finally closes both ways
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class CutOnce(Outage):
    """Forwards to target, and once, `after` bytes into the first request that starts with
    `method` (a PATCH), cuts that connection both ways: a network failing mid-body."""

    def __init__(self, target_host: str, target_port: int, after: int, method: bytes = b"PATCH "):
        super().__init__(target_host, target_port)
        self.after = after
        self.method = method
        self.cut = threading.Event()
        self.up()

    def close(self) -> None:
        self.down()

    def _forwarder(self) -> Callable[[bytes, socket.socket], bool]:
        counted: int | None = None  # bytes since the request to cut began, on this connection

        def forward(data: bytes, upstream: socket.socket) -> bool:
            nonlocal counted
            if counted is None and not self.cut.is_set() and self.method in data:
                start = data.index(self.method)
                upstream.sendall(data[:start])
                data, counted = data[start:], 0
            if counted is not None and not self.cut.is_set():
                if counted + len(data) > self.after:
                    upstream.sendall(data[: self.after - counted])
                    self.cut.set()
                    return False
                counted += len(data)
            upstream.sendall(data)
            return True

        return forward


class Silence(Outage):
    """Forwards to target until `mute()`; then drops every byte both ways and closes nothing:
    a peer gone silent (packets dropped), as a network partition looks, on loopback."""

    def __init__(self, target_host: str, target_port: int):
        super().__init__(target_host, target_port)
        self.muted = threading.Event()

    def mute(self) -> None:
        self.muted.set()

    def unmute(self) -> None:
        self.muted.clear()

    def _pipe(
        self,
        source: socket.socket,
        sink: socket.socket,
        forward: Callable[[bytes, socket.socket], bool] | None = None,
    ) -> None:
        def unless_muted(data: bytes, target: socket.socket) -> bool:
            if not self.muted.is_set():
                target.sendall(data)
            return True

        super()._pipe(source, sink, unless_muted)
