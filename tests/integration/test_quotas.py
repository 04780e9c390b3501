"""Per-user ceilings over the API, on real MariaDB, Redis and the directory store: each answer
names the limit, rates say when to retry, and a refused upload leaves nothing stored."""

from __future__ import annotations

import io
import os

import pytest

from api import create_app
from core.bootstrap import Container
from tests.support.media import make_video

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    with open(make_video(tmp_path_factory.mktemp("quota-media"), 1.0), "rb") as fh:
        return fh.read()


def quota_client(settings, container, tmp_path, **limits):
    tight = settings.with_overrides(
        redis_prefix=settings.redis_prefix + f"q{os.urandom(3).hex()}:",
        data_dir=str(tmp_path),
        **limits,
    )
    return create_app(container=Container(tight, passwords=container.passwords)).test_client()


def upload(client, headers, data: bytes, name: str = "clip.mp4"):
    return client.post(
        "/upload",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), name)},
    )


def stored_videos(tmp_path) -> list[str]:
    videos = tmp_path / "blobs" / "videos"
    return sorted(p.name for p in videos.iterdir()) if videos.exists() else []


def test_active_jobs_quota_is_429_naming_the_limit(settings, container, auth, clip, tmp_path):
    client = quota_client(settings, container, tmp_path, quota_active_jobs=2)
    _, alice = auth.new_user()
    _, bob = auth.new_user()
    assert [upload(client, alice, clip).status_code for _ in range(2)] == [202, 202]
    refused = upload(client, alice, clip)
    body = refused.get_json()
    assert refused.status_code == 429 and body["code"] == "quota_exceeded"
    assert body["errors"]["quota"] == {"limit": "QUOTA_ACTIVE_JOBS", "max": 2, "used": 2}
    assert int(refused.headers["Retry-After"]) > 0
    assert upload(client, bob, clip).status_code == 202  # one user never uses another's room


def test_stored_bytes_quota_is_413_and_stores_nothing(settings, container, auth, clip, tmp_path):
    client = quota_client(settings, container, tmp_path, quota_stored_mb=1)
    _, alice = auth.new_user()
    big = clip + b"\0" * (2 * 2**20)  # a valid head, 2 MiB over the quota
    refused = upload(client, alice, big)
    assert refused.status_code == 413
    assert refused.get_json()["errors"]["quota"]["limit"] == "QUOTA_STORED_MB"
    assert stored_videos(tmp_path) == []
    assert client.get("/jobs", headers=alice).get_json()["total"] == 0


def test_upload_rate_is_429_with_retry_after(settings, container, auth, clip, tmp_path):
    client = quota_client(settings, container, tmp_path, upload_rate_limit="2/minute")
    _, alice = auth.new_user()
    assert [upload(client, alice, clip).status_code for _ in range(2)] == [202, 202]
    refused = upload(client, alice, clip)
    assert refused.status_code == 429
    assert refused.get_json()["errors"]["quota"]["limit"] == "UPLOAD_RATE_LIMIT"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_items_quota_is_413_naming_the_limit(settings, container, auth, tmp_path):
    client = quota_client(settings, container, tmp_path, quota_items=2)
    _, alice = auth.new_user()
    for key in ("a", "b"):
        assert client.put(f"/items/{key}", json={"v": 1}, headers=alice).status_code == 201
    assert client.put("/items/a", json={"v": 2}, headers=alice).status_code == 200  # update: ok
    refused = client.put("/items/c", json={"v": 3}, headers=alice)
    assert refused.status_code == 413
    assert refused.get_json()["errors"]["quota"]["limit"] == "QUOTA_ITEMS"
    assert client.delete("/items/a", headers=alice).status_code == 204
    assert client.put("/items/c", json={"v": 3}, headers=alice).status_code == 201


def test_a_disguised_manifest_is_refused_at_the_door(settings, container, auth, tmp_path):
    from tests.support.hostile import MANIFESTS, padded_like_ts

    client = quota_client(settings, container, tmp_path)
    _, alice = auth.new_user()
    refused = upload(client, alice, padded_like_ts(MANIFESTS["dash"], 4, 192, 8192), "a.ts")
    assert refused.status_code == 415 and stored_videos(tmp_path) == []


def test_resumable_creation_counts_against_the_upload_rate(settings, container, auth, tmp_path):
    client = quota_client(settings, container, tmp_path, upload_rate_limit="1/minute")
    _, alice = auth.new_user()
    tus = {**alice, "Tus-Resumable": "1.0.0", "Upload-Length": "1000"}
    assert client.post("/uploads/", headers=tus).status_code == 201
    refused = client.post("/uploads/", headers=tus)
    assert refused.status_code == 429
    assert refused.get_json()["errors"]["quota"]["limit"] == "UPLOAD_RATE_LIMIT"
    # a retried creation with its Idempotency-Key is not a new upload: it is not counted
    keyed = {**tus, "Idempotency-Key": "k"}
    fresh = quota_client(settings, container, tmp_path, upload_rate_limit="1/minute")
    first = fresh.post("/uploads/", headers=keyed)
    assert first.status_code == 201
    again = fresh.post("/uploads/", headers=keyed)
    assert again.status_code == 201 and again.headers["Location"] == first.headers["Location"]


def tus_create(client, headers, length: int):
    return client.post(
        "/uploads/", headers={**headers, "Tus-Resumable": "1.0.0", "Upload-Length": str(length)}
    )


def tus_patch(client, headers, location: str, offset: int, data: bytes):
    return client.patch(
        location,
        data=data,
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def path_of(created) -> str:
    return "/" + created.headers["Location"].split("/", 3)[3]


def test_unfinished_resumable_uploads_count_against_stored_bytes(
    settings, container, auth, clip, tmp_path
):
    """An upload's declared Upload-Length is reserved when it is created: partial uploads
    cannot pile up past QUOTA_STORED_MB, and a multipart upload sees the room they take."""
    client = quota_client(settings, container, tmp_path, quota_stored_mb=4)
    _, alice = auth.new_user()
    _, bob = auth.new_user()
    first = tus_create(client, alice, 3 * 2**20)
    assert first.status_code == 201
    assert tus_patch(client, alice, path_of(first), 0, b"\0" * 2**20).status_code == 204
    second = tus_create(client, alice, 3 * 2**20)
    assert second.status_code == 413, second.get_json()
    quota = second.get_json()["errors"]["quota"]
    assert quota["limit"] == "QUOTA_STORED_MB" and quota["used"] == 3 * 2**20
    big = clip + b"\0" * (2 * 2**20)
    assert upload(client, alice, big).status_code == 413  # 3 MiB held + 2 MiB > 4 MiB
    assert tus_create(client, bob, 3 * 2**20).status_code == 201  # bob's room is his own
    # terminating gives the room back
    terminated = client.delete(path_of(first), headers={**alice, "Tus-Resumable": "1.0.0"})
    assert terminated.status_code == 204
    assert tus_create(client, alice, 3 * 2**20).status_code == 201


def test_many_small_partial_uploads_are_counted_too(settings, container, auth, tmp_path):
    """The reported case: a user kept 18 MiB of partial uploads under a 4 MiB quota."""
    client = quota_client(settings, container, tmp_path, quota_stored_mb=4)
    _, mallory = auth.new_user()
    answers = [tus_create(client, mallory, 2**20).status_code for _ in range(18)]
    assert answers == [201] * 4 + [413] * 14


def test_an_expired_upload_gives_its_room_back(settings, container, auth, tmp_path):
    client = quota_client(
        settings, container, tmp_path, quota_stored_mb=4, upload_expires_seconds=1
    )
    _, alice = auth.new_user()
    assert tus_create(client, alice, 4 * 2**20).status_code == 201
    assert tus_create(client, alice, 2**20).status_code == 413
    from tests.support.wait import wait_for

    wait_for(
        lambda: tus_create(client, alice, 2**20).status_code == 201,
        timeout=15,
        what="the expired upload to free its room",
    )


def test_a_finished_resumable_upload_keeps_its_room_as_a_job(
    settings, container, auth, clip, tmp_path
):
    client = quota_client(settings, container, tmp_path, quota_stored_mb=1)
    _, alice = auth.new_user()
    created = tus_create(client, alice, len(clip))
    finished = tus_patch(client, alice, path_of(created), 0, clip)
    assert finished.status_code == 204 and finished.headers["Vid2mp3-Job-Id"]
    room = 2**20 - len(clip)
    assert tus_create(client, alice, room + 1).status_code == 413
    assert tus_create(client, alice, room).status_code == 201
