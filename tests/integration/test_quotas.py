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
    from tests.unit.test_sniff import MANIFESTS, padded_like_ts

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
