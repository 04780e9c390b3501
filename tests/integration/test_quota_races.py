"""Quotas under concurrent requests, over the test client on real MariaDB, Redis and the
directory store: the quota is taken when the upload is admitted, atomically, so uploads
that arrive together cannot all pass a check made before any of them was recorded."""

from __future__ import annotations

import io
import os
import threading

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from api import create_app
from core.bootstrap import Container
from tests.support.media import make_video
from tests.support.wait import scaled, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    with open(make_video(tmp_path_factory.mktemp("race-media"), 1.0), "rb") as fh:
        return fh.read()


def racing_client(settings, container, tmp_path, **limits):
    tight = settings.with_overrides(
        redis_prefix=settings.redis_prefix + f"r{os.urandom(3).hex()}:",
        data_dir=str(tmp_path),
        mysql_pool_size=24,  # every racing request holds a connection while it waits its turn
        upload_rate_limit="1000/hour",
        quota_concurrent_uploads=16,  # here the quotas race, not the cap on uploads at once
        **limits,
    )
    return create_app(container=Container(tight, passwords=container.passwords)).test_client()


class Gate:
    """Bodies that stop after their first bytes until every racer is either waiting there
    or already answered: all of them are past the quota check before any is recorded."""

    def __init__(self, racers: int):
        self.racers = racers
        self.waiting = 0
        self.answered = 0
        self.lock = threading.Lock()
        self.open = threading.Event()

    def body(self, data: bytes, head: int = 2048) -> GatedBody:
        return GatedBody(self, data, head)

    def release_when_all_arrived(self) -> None:
        def arrived() -> bool:
            with self.lock:
                return self.waiting + self.answered >= self.racers

        wait_for(arrived, timeout=60, what="every racer to reach the gate or be answered")
        self.open.set()


class GatedBody(io.RawIOBase):
    def __init__(self, gate: Gate, data: bytes, head: int):
        self.gate, self.data, self.head, self.pos, self.counted = gate, data, head, 0, False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client measures the body by seeking to its end
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: len(self.data)}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.head and not self.gate.open.is_set():
            if not self.counted:
                self.counted = True
                with self.gate.lock:
                    self.gate.waiting += 1
            assert self.gate.open.wait(timeout=scaled(60)), "the gate never opened"
        end = len(self.data) if self.pos >= self.head else self.head
        chunk = self.data[self.pos : min(end, self.pos + len(buffer))]
        buffer[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)


def race(gate: Gate, calls) -> list:
    answers: list = [None] * len(calls)

    def run(n: int) -> None:
        try:
            answers[n] = calls[n]()
        except BaseException as exc:  # shown by the assertion below
            answers[n] = exc
        finally:
            with gate.lock:
                gate.answered += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    gate.release_when_all_arrived()
    for thread in threads:
        thread.join(timeout=scaled(120))
    failed = [a for a in answers if isinstance(a, BaseException)]
    if failed:
        raise failed[0]
    return answers


def multipart(client, headers, gate: Gate, video: bytes):
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(video), filename="clip.mp4")})
    return lambda: client.post(
        "/upload",
        headers=headers,
        input_stream=gate.body(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        content_length=len(body),
    )


def test_concurrent_uploads_never_exceed_the_active_jobs_quota(
    settings, container, auth, clip, tmp_path
):
    client = racing_client(settings, container, tmp_path, quota_active_jobs=3)
    _, alice = auth.new_user()
    gate = Gate(8)
    answers = race(gate, [multipart(client, alice, gate, clip) for _ in range(8)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202] * 3 + [429] * 5, statuses
    refused = next(a for a in answers if a.status_code == 429).get_json()
    assert refused["errors"]["quota"]["limit"] == "QUOTA_ACTIVE_JOBS"
    assert client.get("/jobs", headers=alice).get_json()["total"] == 3
    videos = tmp_path / "blobs" / "videos"
    assert len([p for p in videos.iterdir() if not p.name.endswith(".json")]) == 3


def test_concurrent_uploads_never_exceed_the_stored_bytes_quota(
    settings, container, auth, clip, tmp_path
):
    client = racing_client(settings, container, tmp_path, quota_stored_mb=1)
    _, alice = auth.new_user()
    video = clip + b"\0" * (400 * 1024 - len(clip))  # 400 KiB: two fit in 1 MiB, three do not
    gate = Gate(4)
    answers = race(gate, [multipart(client, alice, gate, video) for _ in range(4)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202, 202, 413, 413], statuses
    jobs = client.get("/jobs", headers=alice).get_json()["items"]
    assert sum(job["video_size"] for job in jobs) <= 2**20


def test_resumable_uploads_finishing_together_respect_the_active_jobs_quota(
    settings, container, auth, clip, tmp_path
):
    client = racing_client(settings, container, tmp_path, quota_active_jobs=2)
    _, alice = auth.new_user()
    locations = []
    for _ in range(4):
        created = client.post(
            "/uploads/", headers={**alice, **TUS, "Upload-Length": str(len(clip))}
        )
        assert created.status_code == 201
        locations.append("/" + created.headers["Location"].split("/", 3)[3])
    gate = Gate(4)

    def finish(location):
        return lambda: client.patch(
            location,
            input_stream=gate.body(clip, head=1024),
            content_length=len(clip),
            headers={**alice, **TUS, "Upload-Offset": "0", "Content-Type": OCTETS},
        )

    answers = race(gate, [finish(location) for location in locations])
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [204, 204, 429, 429], statuses
    assert client.get("/jobs", headers=alice).get_json()["total"] == 2
