"""A closed-loop HTTP/1.1 load generator: N keep-alive connections for T seconds, in its
own process.

Each connection is a thread sending one prepared request at a time over a raw socket and
reading the answer by its Content-Length, so the client spends little CPU per request.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: tuple[float, ...]  # seconds, every request

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_response(sock: socket.socket, pending: bytes) -> tuple[int, bytes]:
    """(status, bytes after this response) from one keep-alive response with a Content-Length."""
    data = pending
    while (end := data.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    head = data[:end].decode("latin-1")
    status = int(head[9:12])
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    need = end + 4 + length
    while len(data) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return status, data[need:]


def _connection_loop(
    host: str, port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    sock = None
    pending = b""
    try:
        while (now := time.perf_counter()) < stop_at:
            try:
                if sock is None:
                    sock, pending = _connect(host, port), b""
                sock.sendall(request)
                status, pending = _read_response(sock, pending)
                if status != 200:
                    errors[0] += 1
                    continue
                latencies.append(time.perf_counter() - now)
            except OSError:
                errors[0] += 1
                if sock is not None:
                    sock.close()
                sock = None
    finally:
        if sock is not None:
            sock.close()


def run(host: str, port: int, request: bytes, connections: int, seconds: float) -> LoadResult:
    """Keep `connections` requests in flight for `seconds`; count the 200 answers."""
    stop_at = time.perf_counter() + seconds
    per_thread: list[list[float]] = [[] for _ in range(connections)]
    errors = [[0] for _ in range(connections)]
    threads = [
        threading.Thread(
            target=_connection_loop,
            args=(host, port, request, stop_at, per_thread[i], errors[i]),
            daemon=True,
        )
        for i in range(connections)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.perf_counter() - started
    latencies = tuple(x for chunk in per_thread for x in chunk)
    return LoadResult(len(latencies), sum(e[0] for e in errors), elapsed, latencies)


def run_in_process(
    host: str, port: int, request: bytes, connections: int, seconds: float
) -> LoadResult:
    """`run` in a fresh process, so the client's CPU and GIL are not the bench's."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run, host, port, request, connections, seconds).result(
            timeout=seconds + 120
        )


def get_request(path: str, host: str, token: str | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
