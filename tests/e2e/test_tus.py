"""Resumable uploads over real gunicorn and workers, driven by tuspy (a tus client we did not
write): an upload cut off mid-PATCH resumes from the offset HEAD reports and converts."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from urllib.parse import urlsplit

import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from tests.support import media
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


@pytest.fixture(scope="module")
def video(media_dir):
    """A 5 s clip of a few hundred KB: big enough to cut in the middle of a PATCH."""
    return media.make_video(media_dir, seconds=5.0, size="320x240")


def tus_client(stack, user) -> TusClient:
    return TusClient(
        stack.url("/uploads/"), headers={"Authorization": user.session.headers["Authorization"]}
    )


def offset_of(user, url) -> int:
    response = user.session.head(url, headers=TUS, timeout=10)
    assert response.status_code == 200, response.status_code
    return int(response.headers["Upload-Offset"])


def send_half_and_hang_up(
    url: str, token_header: str, offset: int, body: bytes, keep_open: bool = False
) -> socket.socket:
    """A PATCH declaring all of body that sends only its first half, then closes the socket
    (or leaves it open, still streaming as far as the server knows)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: {token_header}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: {OCTETS}\r\nUpload-Offset: {offset}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body[: len(body) // 2])
    if not keep_open:
        sock.close()
    return sock


def wait_job(user, job_id, timeout=90):
    def finished():
        job = user.get(f"/jobs/{job_id}").json()
        return job if job["status"] in ("done", "failed") else None

    return wait_for(finished, timeout=timeout, what=f"job {job_id} to finish")


def test_interrupted_upload_resumes_and_converts(stack, new_user, video, tmp_path):
    user, _ = new_user()
    data = open(video, "rb").read()
    quarter = len(data) // 4
    client = tus_client(stack, user)
    first = client.uploader(
        video,
        chunk_size=quarter,
        upload_checksum=True,
        metadata={"filename": "holiday.mp4", "bitrate": "128k"},
    )
    first.upload(stop_at=quarter)
    assert offset_of(user, first.url) == quarter

    # the connection drops halfway through the next PATCH: what arrived is kept
    rest = data[quarter:]
    send_half_and_hang_up(first.url, user.session.headers["Authorization"], quarter, rest)
    expected = quarter + len(rest) // 2
    wait_for(
        lambda: offset_of(user, first.url) == expected,
        timeout=30,
        what="the server to keep the half that arrived",
    )

    resumed = client.uploader(video, url=first.url, chunk_size=quarter, upload_checksum=True)
    assert resumed.offset == expected  # tuspy asked HEAD where to resume
    resumed.upload()
    headers = resumed.request.response_headers
    job_id = headers["vid2mp3-job-id"]
    assert headers["vid2mp3-job-location"] == f"/jobs/{job_id}"

    job = wait_job(user, job_id)
    assert job["status"] == "done", job
    assert job["video_size"] == len(data) and job["bitrate"] == "128k"
    assert job["filename"] == "holiday.mp4"
    response = user.get(f"/jobs/{job_id}/mp3")
    assert response.status_code == 200
    out = tmp_path / "out.mp3"
    out.write_bytes(response.content)
    assert media.is_mpeg_audio(out)
    assert abs(media.mp3_duration(out) - 5.0) <= 0.2
    # a finished upload answers HEAD with the job; it cannot be written to again
    head = user.session.head(first.url, headers=TUS, timeout=10)
    assert head.headers["Vid2mp3-Job-Id"] == job_id


def test_a_second_patch_while_one_streams_gets_409(stack, new_user, video):
    user, _ = new_user()
    data = open(video, "rb").read()
    uploader = tus_client(stack, user).uploader(video, chunk_size=len(data))
    url = uploader.create_url()
    hanging = send_half_and_hang_up(
        url, user.session.headers["Authorization"], 0, data, keep_open=True
    )
    try:
        # Wait until the first PATCH holds the upload's lock (under load gunicorn may not have
        # picked it up yet, and a second PATCH sent then would simply win). Polling with PATCHes
        # cannot tell: a poll that takes the lock just as the first one arrives turns the first
        # one away, and every later poll then finds the upload free.
        wait_for(
            lambda: _lock_held(stack, url),
            timeout=30,
            what="the server to start on the first PATCH",
        )
        assert _second_patch(user, url, data) == 409
        assert offset_of(user, url) == 0
    finally:
        hanging.close()
    wait_for(
        lambda: offset_of(user, url) == len(data) // 2,
        timeout=30,
        what="the first PATCH's half to be kept",
    )
    # The half is recorded a moment before the first PATCH lets go of the upload (a resume
    # sent in between is refused with 409, as it should be): wait for the lock to go.
    wait_for(lambda: not _lock_held(stack, url), timeout=30, what="the first PATCH to end")
    resumed = tus_client(stack, user).uploader(video, url=url, chunk_size=len(data))
    resumed.upload()
    assert wait_job(user, resumed.request.response_headers["vid2mp3-job-id"])["status"] == "done"


def _lock_held(stack, url) -> bool:
    """Whether a PATCH holds the upload's lock (the Redis key RedisUploadRepository takes)."""
    upload_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return bool(
        stack.container.redis.exists(f"{stack.settings.redis_prefix}upload:{upload_id}:lock")
    )


def _second_patch(user, url, data) -> int:
    return user.session.patch(
        url, data=data, timeout=10, headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": "0"}
    ).status_code


def test_protocol_errors_over_http(stack, new_user, video):
    user, _ = new_user()
    stranger, _ = new_user()
    data = open(video, "rb").read()
    client = tus_client(stack, user)
    uploader = client.uploader(video, chunk_size=1000)
    uploader.upload(stop_at=1000)
    url = uploader.url

    def patch(who, offset, body, **headers):
        return who.session.patch(
            url,
            data=body,
            timeout=10,
            headers={**TUS, "Content-Type": OCTETS, "Upload-Offset": str(offset), **headers},
        )

    assert patch(user, 0, data[:10]).status_code == 409
    wrong = base64.b64encode(hashlib.sha1(b"not this").digest()).decode()
    mismatch = patch(user, 1000, data[1000:2000], **{"Upload-Checksum": f"sha1 {wrong}"})
    assert mismatch.status_code == 460 and mismatch.json()["code"] == "checksum_mismatch"
    assert offset_of(user, url) == 1000
    assert patch(stranger, 1000, data[1000:]).status_code == 404
    assert stranger.session.head(url, headers=TUS, timeout=10).status_code == 404
    assert stranger.session.delete(url, headers=TUS, timeout=10).status_code == 404
    missing = user.session.patch(
        url, data=b"x", timeout=10, headers={"Content-Type": OCTETS, "Upload-Offset": "1000"}
    )
    assert missing.status_code == 412 and missing.headers["Tus-Version"] == "1.0.0"
    old = user.session.head(url, headers={"Tus-Resumable": "0.2.2"}, timeout=10)
    assert old.status_code == 412

    limit = stack.settings.max_upload_bytes
    with pytest.raises(TusCommunicationError) as too_big:
        client.uploader(file_stream=_Sized(limit + 1), chunk_size=1000).create_url()
    assert too_big.value.status_code == 413

    upload_id = url.rsplit("/", 1)[1]
    stack.container.upload_repo.update(upload_id, {"expires_at": time.time() - 1})
    assert user.session.head(url, headers=TUS, timeout=10).status_code == 410
    assert patch(user, 1000, data[1000:]).status_code == 410
    assert stack.container.uploads.purge_expired() >= 1
    assert user.session.head(url, headers=TUS, timeout=10).status_code == 404

    deleted = client.uploader(video, chunk_size=1000)
    deleted.upload(stop_at=1000)
    assert user.session.delete(deleted.url, headers=TUS, timeout=10).status_code == 204
    assert user.session.head(deleted.url, headers=TUS, timeout=10).status_code == 404


class _Sized:
    """A stream that only claims a size: tuspy reads the length with seek/tell."""

    def __init__(self, size: int):
        self.size = size
        self.position = 0

    def seek(self, offset, whence=os.SEEK_SET):
        self.position = self.size if whence == os.SEEK_END else offset
        return self.position

    def tell(self):
        return self.position

    def read(self, n=-1):
        return b""
