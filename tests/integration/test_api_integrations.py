"""The refusals of the integration routes over the API, on real MariaDB, Redis and the directory
store: idempotency keys, cancel, links and webhook redelivery each answer with their status."""

from __future__ import annotations

import io
import uuid

import pytest

from core.domain.files import MP3S, VIDEOS
from core.domain.jobs import Job, JobStatus
from tests.support.media import make_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    with open(make_video(tmp_path_factory.mktemp("integrations"), 1.0), "rb") as fh:
        return fh.read()


def upload(client, headers, data: bytes, key: str | None = None):
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post(
        "/upload",
        headers={**headers, **extra},
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), "clip.mp4")},
    )


def done_job(container, owner_id: int) -> Job:
    """A finished job with an MP3 in the store, as a conversion leaves it."""
    blobs = container.blob_store
    with blobs.writer(VIDEOS, "clip.mp4", "video/mp4", {"owner_id": owner_id}) as video:
        video.write(b"\x00" * 64)
    job = container.job_repo.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=owner_id,
            status=JobStatus.QUEUED,
            video_fid=video.fid,
            video_filename="clip.mp4",
            video_size=64,
        )
    )
    with blobs.writer(MP3S, "clip.mp3", "audio/mpeg", {"job_id": job.id}) as mp3:
        mp3.write(b"ID3" + b"\x00" * 997)
    container.job_repo.update(
        job.id, {"status": JobStatus.DONE, "mp3_fid": mp3.fid, "mp3_size": 1000, "progress": 100.0}
    )
    done = container.job_repo.get(job.id)
    assert done is not None
    return done


def test_a_malformed_idempotency_key_is_400(client, auth, clip):
    _, alice = auth.new_user()
    refused = upload(client, alice, clip, key="\x7f not printable")
    assert refused.status_code == 400 and "Idempotency-Key" in refused.get_json()["message"]
    assert client.get("/jobs", headers=alice).get_json()["total"] == 0


def test_a_retry_whose_job_was_deleted_is_404(client, auth, clip):
    _, alice = auth.new_user()
    first = upload(client, alice, clip, key="k-deleted-1")
    assert first.status_code == 202
    assert client.delete(f"/jobs/{first.get_json()['job_id']}", headers=alice).status_code == 204
    retry = upload(client, alice, clip, key="k-deleted-1")
    assert retry.status_code == 404 and "deleted" in retry.get_json()["message"]


def test_cancel_of_someone_elses_or_no_job_is_404(client, auth, clip):
    _, alice = auth.new_user()
    _, bob = auth.new_user()
    job_id = upload(client, alice, clip).get_json()["job_id"]
    assert client.post(f"/jobs/{job_id}/cancel", headers=bob).status_code == 404
    assert client.post(f"/jobs/{'0' * 32}/cancel", headers=alice).status_code == 404
    assert client.get(f"/jobs/{job_id}", headers=alice).get_json()["status"] == "queued"


def test_links_answer_416_404_and_410(client, auth, container):
    user, alice = auth.new_user()
    job = done_job(container, user["id"])
    made = client.post(f"/jobs/{job.id}/links", headers=alice, json={"expires_in": 3600})
    assert made.status_code == 201
    path = "/links/" + made.get_json()["url"].rsplit("/links/", 1)[1]
    assert client.get(path).data.startswith(b"ID3")  # no token needed
    past_end = client.get(path, headers={"Range": "bytes=5000-"})
    assert past_end.status_code == 416 and past_end.headers["Content-Range"] == "bytes */1000"
    assert client.get(path[:-3] + "xyz").status_code == 404  # tampered
    expired_link = container.links.sign(job.id, job.mp3_fid, -1)[0].rsplit("/links/", 1)[1]
    assert client.get(f"/links/{expired_link}").status_code == 410
    container.job_repo.update(job.id, {"status": JobStatus.EXPIRED})
    assert client.get(path).status_code == 410  # the MP3 was purged by retention
    assert client.get(f"/jobs/{job.id}/mp3", headers=alice).status_code == 410
    again = client.post(f"/jobs/{job.id}/links", headers=alice, json={})
    assert again.status_code == 410


def test_redelivery_of_an_unknown_delivery_is_404(auth, settings, container):
    from api import create_app
    from core.bootstrap import Container

    local = settings.with_overrides(webhook_allow_private=True)  # a receiver on loopback
    client = create_app(container=Container(local, passwords=container.passwords)).test_client()
    _, alice = auth.new_user()
    created = client.post("/webhooks", headers=alice, json={"url": "http://127.0.0.1:9/hook"})
    assert created.status_code == 201, created.get_json()
    endpoint = created.get_json()["id"]
    missing = client.post(
        f"/webhooks/{endpoint}/deliveries/{'0' * 32}/redeliver", headers=alice, json={}
    )
    assert missing.status_code == 404
    other = client.post(f"/webhooks/{'0' * 32}/deliveries/{'0' * 32}/redeliver", headers=alice)
    assert other.status_code == 404
