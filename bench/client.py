"""A small HTTP client for the API over http.client: streamed uploads, counted downloads."""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import uuid
from typing import Any, Iterable, Iterator

UPLOAD_CHUNK = 1 << 20
# gunicorn closes a keep-alive connection idle for `keepalive` (5 s); reconnect well before.
MAX_IDLE_S = 2.0
EVENT_STREAM = "text/event-stream"
TERMINAL = ("done", "failed", "cancelled", "expired")


class ApiError(RuntimeError):
    pass


class ApiClient:
    """One keep-alive connection to the API, with a Bearer token once logged in."""

    def __init__(self, host: str, port: int, timeout: float = 300.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.token: str | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> http.client.HTTPConnection:
        """The connection, opened anew when the server may have closed it for idling."""
        now = time.monotonic()
        if self._conn is not None and now - self._last_used > MAX_IDLE_S:
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._last_used = now
        return self._conn

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer (small bodies only)."""
        try:
            self.conn.request(method, path, body=body, headers=self._headers(headers))
            response = self.conn.getresponse()
            body = response.read()
            self._last_used = time.monotonic()
            return response.status, body
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise

    def json(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        status, body = self.request(method, path, **kw)
        if status != expect:
            raise ApiError(f"{method} {path}: {status} {body[:500]!r}")
        return json.loads(body) if body else None

    def login(self, email: str, password: str) -> str:
        raw = base64.b64encode(f"{email}:{password}".encode()).decode()
        self.token = None
        self.token = self.json("POST", "/login", headers={"Authorization": f"Basic {raw}"})[
            "access_token"
        ]
        return self.token

    # --- uploads ---------------------------------------------------------------------------

    def upload(
        self, chunks: Iterable[bytes | memoryview], size: int, filename: str, bitrate: str = "192k"
    ) -> dict[str, Any]:
        """POST /upload as multipart with a Content-Length, streaming `chunks` (never all held)."""
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="bitrate"\r\n\r\n'
            f'{bitrate}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        conn = self.conn
        try:
            conn.putrequest("POST", "/upload")
            for name, value in self._headers(
                {
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + size + len(tail)),
                }
            ).items():
                conn.putheader(name, value)
            conn.endheaders()
            conn.send(head)
            sent = 0
            for chunk in chunks:
                conn.send(chunk)
                sent += len(chunk)
            if sent != size:
                raise ValueError(f"upload promised {size} bytes but sent {sent}")
            conn.send(tail)
            response = conn.getresponse()
            body = response.read()
            self._last_used = time.monotonic()
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise
        if response.status != 202:
            raise ApiError(f"upload: {response.status} {body[:500]!r}")
        return json.loads(body)

    def upload_file(self, path: str | os.PathLike[str], bitrate: str = "192k") -> dict[str, Any]:
        size = os.path.getsize(path)
        return self.upload(_read_chunks(path), size, os.path.basename(path), bitrate)

    # --- jobs ------------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any]:
        return self.json("GET", f"/jobs/{job_id}")

    def wait_job(self, job_id: str, timeout: float, interval: float = 0.05) -> dict[str, Any]:
        """Poll GET /jobs/<id> until done or failed, with a deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(interval)
        raise TimeoutError(f"job {job_id} not finished after {timeout} s")

    def follow(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """Follow GET /jobs/<id>/events (Server-Sent Events) as the CLI does, until the job
        ends; its last state, or None when the server refuses the stream (the caller polls)."""
        conn = self.conn  # the keep-alive connection, as the CLI's pool reuses its own
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request(
                "GET", f"/jobs/{job_id}/events", headers=self._headers({"Accept": EVENT_STREAM})
            )
            response = conn.getresponse()
            if response.status != 200:
                response.read()
                return None
            last: dict[str, Any] | None = None
            data: list[str] = []
            while line := response.readline():
                text = line.decode().rstrip("\r\n")
                if text.startswith("data:"):
                    data.append(text[5:].lstrip())
                elif not text and data:  # the end of one event
                    last = json.loads("\n".join(data))
                    data = []
                    if last.get("status") in TERMINAL:
                        break
            response.read()  # the stream's end: the connection serves the next request
            self._last_used = time.monotonic()
            if last is None:
                raise ApiError(f"GET /jobs/{job_id}/events ended before any event")
            return last
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise

    def delete_job(self, job_id: str) -> None:
        self.request("DELETE", f"/jobs/{job_id}")

    def download(self, path: str, chunk: int) -> tuple[int, float]:
        """GET a body into one reused buffer of `chunk` bytes; (bytes, seconds to the last byte)."""
        buffer = bytearray(chunk)
        view = memoryview(buffer)
        started = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=self._headers())
            response = self.conn.getresponse()
            if response.status != 200:
                raise ApiError(f"GET {path}: {response.status} {response.read()[:500]!r}")
            total = 0
            while n := response.readinto(view):
                total += n
            self._last_used = time.monotonic()
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise
        return total, time.perf_counter() - started


def _read_chunks(path: str | os.PathLike[str]) -> Iterator[memoryview]:
    """The file in pieces read into one buffer: each piece is valid until the next is asked
    for (the load client spends its CPU on sending, not on allocating)."""
    buffer = bytearray(UPLOAD_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb") as fh:
        while n := fh.readinto(buffer):
            yield view[:n]
