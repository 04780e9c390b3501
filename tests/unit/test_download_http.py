"""The download route on fakes: every answer releases the blob store's reader exactly once."""

from __future__ import annotations

import io

import pytest

from core.domain.files import MP3S
from tests.support.pipeline import submit


class Tracked:
    """A blob store reader as a context manager that counts how often it is left."""

    def __init__(self, data: bytes, log: list[str]):
        self._data, self._log = data, log

    def __enter__(self):
        self._log.append("open")
        return io.BytesIO(self._data)

    def __exit__(self, *exc):
        self._log.append("close")


@pytest.fixture
def download(pipeline, alice, auth):
    from api import create_app

    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    mp3 = pipeline.blobs.in_bucket(MP3S)[0]
    log: list[str] = []
    pipeline.blobs.open = lambda bucket, fid: Tracked(pipeline.blobs.files[(bucket, fid)][0], log)
    app = create_app(container=pipeline.container)
    token = auth.login("alice@example.com", "alice-password")["access_token"]
    client = app.test_client()

    def call(method="GET", **headers):
        response = client.open(
            f"/jobs/{job.id}/mp3",
            method=method,
            headers={"Authorization": f"Bearer {token}", **headers},
        )
        body = response.get_data()
        response.close()  # as the WSGI server does once the body is sent
        return response, body

    return call, mp3, log


@pytest.mark.parametrize(
    "method,headers,status",
    [
        ("GET", {}, 200),
        ("HEAD", {}, 200),
        ("GET", {"Range": "bytes=2-5"}, 206),
        ("HEAD", {"Range": "bytes=2-5"}, 206),
        ("GET", {"Range": "bytes=0-1,3-4"}, 200),
        ("GET", {"Range": "bytes=1000-"}, 416),
        ("HEAD", {"Range": "bytes=1000-"}, 416),
        ("GET", {"If-None-Match": "*"}, 304),
        ("HEAD", {"If-None-Match": "*"}, 304),
        ("GET", {"Range": "bytes=2-5", "If-Range": '"stale"'}, 200),
        ("GET", {"If-Match": '"stale"'}, 412),
        ("HEAD", {"If-Match": '"stale"'}, 412),
    ],
)
def test_every_answer_releases_the_reader_once(download, method, headers, status):
    call, mp3, log = download
    response, body = call(method, **headers)
    assert response.status_code == status
    expected = {200: mp3, 206: mp3[2:6], 304: b""}.get(status)
    if method == "HEAD":
        assert body == b""
    elif expected is not None:
        assert body == expected
    assert log == ["open", "close"]


@pytest.mark.parametrize(
    "value", ["bytes=٢-٥", "bytes=²-³", "bytes=+2-5", "bytes=2_0-", "bytes=-٣"]
)
def test_a_range_not_in_ascii_digits_is_ignored(download, value):
    """RFC 9110: a Range the server cannot read is ignored; the whole MP3, never a 500."""
    call, mp3, log = download
    response, body = call("GET", Range=value)
    assert response.status_code == 200 and body == mp3
    assert log == ["open", "close"]
