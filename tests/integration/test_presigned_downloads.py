"""S3_PRESIGNED_DOWNLOADS: the MP3 routes check ownership, cancellation and expiry, then answer
302 to a presigned SeaweedFS URL that serves the bytes (and Range) itself."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from core.domain.files import MP3S, VIDEOS
from core.domain.jobs import Job, JobStatus

MP3 = b"ID3" + bytes(range(256)) * 40  # 10243 bytes


@pytest.fixture
def s3_container(container, s3_server, s3_bucket, monkeypatch):
    """A container on the run's MariaDB and Redis whose blob store is the test's bucket."""
    from core.bootstrap import Container

    env = s3_server.env(s3_bucket, prefix="presign/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env["AWS_SECRET_ACCESS_KEY"])
    settings = container.settings.with_overrides(
        s3_bucket=s3_bucket,
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        s3_region=env["S3_REGION"],
        s3_prefix="presign/",
        s3_presigned_downloads=True,
    )
    return Container(settings, passwords=container.passwords)


@pytest.fixture
def s3_client(s3_container):
    from api import create_app

    return create_app(container=s3_container).test_client()


def done_job(built, owner_id: int, filename: str = "Fête de l'été.mov") -> Job:
    """A finished job whose MP3 is in the S3 bucket, as a conversion leaves it."""
    blobs = built.blob_store
    with blobs.writer(VIDEOS, filename, "video/quicktime", {"owner_id": owner_id}) as video:
        video.write(b"\x00" * 64)
    job = built.job_repo.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=owner_id,
            status=JobStatus.QUEUED,
            video_fid=video.fid,
            video_filename=filename,
            video_size=64,
        )
    )
    with blobs.writer(MP3S, "x.mp3", "audio/mpeg", {"job_id": job.id}) as mp3:
        mp3.write(MP3)
    built.job_repo.update(
        job.id, {"status": JobStatus.DONE, "mp3_fid": mp3.fid, "mp3_size": len(MP3)}
    )
    return built.job_repo.get(job.id)


def follow(answer, **headers) -> requests.Response:
    """Fetch a 302's Location as a browser or curl -L would: no API token goes along."""
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "private, no-store"
    return requests.get(answer.headers["Location"], headers=headers, timeout=30)


def test_the_owner_is_redirected_to_a_presigned_url_that_serves_ranges(
    s3_client, s3_container, auth
):
    user, alice = auth.new_user()
    job = done_job(s3_container, user["id"])
    answer = s3_client.get(f"/jobs/{job.id}/mp3", headers=alice)
    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]  # SigV4, not the old signature
    assert query["X-Amz-Expires"] == ["300"]
    assert location.path.endswith(f"/presign/mp3s/{job.mp3_fid}")

    whole = follow(answer)
    assert whole.status_code == 200 and whole.content == MP3
    assert whole.headers["Content-Type"] == "audio/mpeg"
    disposition = whole.headers["Content-Disposition"]
    assert "filename*=UTF-8''F%C3%AAte%20de%20l%C3%A9t%C3%A9.mp3" in disposition

    # A resumed download: the rest from byte 5000, fetched from S3 and not from the API.
    rest = follow(s3_client.get(f"/jobs/{job.id}/mp3", headers=alice), Range="bytes=5000-")
    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes 5000-{len(MP3) - 1}/{len(MP3)}"
    assert rest.content == MP3[5000:]

    by_fid = s3_client.get(f"/download?fid={job.mp3_fid}", headers=alice)
    assert follow(by_fid).content == MP3


def test_checks_come_before_the_redirect(s3_client, s3_container, auth):
    owner, alice = auth.new_user()
    _, bob = auth.new_user()
    job = done_job(s3_container, owner["id"])
    for path in (f"/jobs/{job.id}/mp3", f"/download?fid={job.mp3_fid}"):
        refused = s3_client.get(path, headers=bob)
        assert refused.status_code == 404 and "Location" not in refused.headers
    assert s3_client.get(f"/jobs/{job.id}/mp3").status_code == 401

    made = s3_client.post(f"/jobs/{job.id}/links", headers=alice, json={"expires_in": 3600})
    path = "/links/" + made.get_json()["url"].rsplit("/links/", 1)[1]
    assert follow(s3_client.get(path)).content == MP3  # a link needs no token
    assert s3_client.get(path[:-3] + "xyz").status_code == 404  # tampered
    expired_link = s3_container.links.sign(job.id, job.mp3_fid, -1)[0].rsplit("/links/", 1)[1]
    gone = s3_client.get(f"/links/{expired_link}")
    assert gone.status_code == 410 and "Location" not in gone.headers

    s3_container.job_repo.update(job.id, {"status": JobStatus.EXPIRED})  # retention's doing
    for answer in (s3_client.get(path), s3_client.get(f"/jobs/{job.id}/mp3", headers=alice)):
        assert answer.status_code == 410 and "Location" not in answer.headers


def test_a_cancelled_job_has_no_mp3_to_redirect_to(s3_client, s3_container, auth):
    owner, alice = auth.new_user()
    job = done_job(s3_container, owner["id"])
    s3_container.job_repo.update(job.id, {"status": JobStatus.CANCELLED})
    refused = s3_client.get(f"/jobs/{job.id}/mp3", headers=alice)
    assert refused.status_code == 404 and "Location" not in refused.headers


def test_without_the_setting_the_api_streams_from_s3(container, s3_container, auth):
    from api import create_app
    from core.bootstrap import Container

    streaming = Container(
        s3_container.settings.with_overrides(s3_presigned_downloads=False),
        passwords=container.passwords,
    )
    client = create_app(container=streaming).test_client()
    owner, alice = auth.new_user()
    job = done_job(streaming, owner["id"])
    whole = client.get(f"/jobs/{job.id}/mp3", headers=alice)
    assert whole.status_code == 200 and whole.data == MP3
    part = client.get(f"/jobs/{job.id}/mp3", headers={**alice, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == MP3[10:20]
    etag = whole.headers["ETag"]
    again = client.get(f"/jobs/{job.id}/mp3", headers={**alice, "If-None-Match": etag})
    assert again.status_code == 304
