"""Every operation that takes a request body cuts off one that comes too slowly, with the
same JSON error (408), over the test client on real MariaDB and Redis. (The stalled
socket, which needs a real server, is in tests/e2e/test_slow_clients.py.)"""

from __future__ import annotations

import io
import os
import time
from urllib.parse import urlsplit

import pytest

from api import create_app
from core.bootstrap import Container
from tests.support.auth import Auth
from tests.support.openapi import PROTOCOL_HEADERS, example_url, operations_documenting

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class Trickle(io.RawIOBase):
    """A body of `size` bytes that comes one byte per read, each after a pause."""

    def __init__(self, size: int, pause: float = 0.02):
        self.size, self.pos, self.pause = size, 0, pause

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client measures the body by seeking to its end
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: self.size}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.size or not len(buffer):
            return 0
        time.sleep(self.pause)
        buffer[0] = ord("{") if self.pos == 0 else ord(" ")
        self.pos += 1
        return 1


@pytest.fixture(scope="module")
def slow_app(settings, container):
    strict = settings.with_overrides(
        body_timeout_seconds=1,
        body_min_rate=1000,
        redis_prefix=settings.redis_prefix + f"slow{os.urandom(3).hex()}:",
    )
    app = create_app(container=Container(strict, passwords=container.passwords))
    app.config["TESTING"] = True
    return app


def _content_type(path: str, method: str) -> dict[str, str]:
    if path in ("/upload", "/guest/{token}/upload"):
        return {"Content-Type": "multipart/form-data; boundary=x"}
    if path.startswith("/uploads/") or path.startswith("/guest/{token}/uploads/"):
        return {"Content-Type": "application/offset+octet-stream", "Upload-Length": "100000"}
    return {"Content-Type": "application/json"}


@pytest.mark.parametrize("path,method", operations_documenting(408))
def test_a_trickling_body_is_cut_off_on_every_route_that_takes_one(slow_app, path, method):
    client = slow_app.test_client()
    auth = Auth(client, slow_app.extensions["vid2mp3"].settings)
    _, headers = auth.new_user()
    url = example_url(path)
    extra = {}
    if path == "/uploads/{upload_id}":
        created = client.post(
            "/uploads/", headers={**headers, **PROTOCOL_HEADERS, "Upload-Length": "100000"}
        )
        url = "/" + created.headers["Location"].split("/", 3)[3]
        extra = {"Upload-Offset": "0"}
    if path.startswith("/guest/{token}/"):
        made = client.post("/upload-links", json={}, headers=headers)
        url = urlsplit(made.get_json()["url"]).path + "/upload"
    if path == "/guest/{token}/uploads/{upload_id}":
        link = url.removesuffix("/upload")
        created = client.post(
            f"{link}/uploads/", headers={**PROTOCOL_HEADERS, "Upload-Length": "100000"}
        )
        url = urlsplit(created.headers["Location"]).path
        extra = {"Upload-Offset": "0"}
    started = time.monotonic()
    response = client.open(
        url,
        method=method.upper(),
        input_stream=Trickle(100_000),
        headers={**headers, **PROTOCOL_HEADERS, **_content_type(path, method), **extra},
    )
    assert response.status_code == 408, response.get_json()
    assert response.get_json()["code"] == "request_timeout"
    assert time.monotonic() - started < 30  # 100 000 bytes at this pace would take 2000 s
