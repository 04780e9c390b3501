"""One-time upload links over the test client on MariaDB, Redis and the directory store."""

from __future__ import annotations

import base64
import io
import os
import threading
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
from standardwebhooks.webhooks import Webhook

from api import create_app
from core.bootstrap import Container
from core.domain.files import MP3S
from core.domain.jobs import JobStatus
from tests.support.media import make_video
from tests.support.receiver import Receiver

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    with open(make_video(tmp_path_factory.mktemp("link-media"), 1.0), "rb") as fh:
        return fh.read()


def b64encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def make_link(client, headers, **fields) -> tuple[dict, str]:
    """A new link's JSON and the path of its URL (/guest/<token>)."""
    response = client.post("/upload-links", json=fields, headers=headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body, urlsplit(body["url"]).path


def guest_upload(client, path: str, data: bytes, name: str = "clip.mp4"):
    return client.post(
        f"{path}/upload",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), name)},
    )


def test_a_guest_uploads_one_file_into_the_creators_job(client, auth, clip):
    owner, headers = auth.new_user()
    link, path = make_link(client, headers, options={"bitrate": "128k"}, max_mb=5)
    assert path.startswith("/guest/") and len(path.rsplit("/", 1)[1]) >= 40
    assert link["state"] == "open" and link["max_mb"] == 5 and link["allow_download"] is False
    expires = datetime.fromisoformat(link["expires_at"]) - datetime.now(timezone.utc)
    assert 86000 < expires.total_seconds() <= 86400
    info = client.get(f"{path}/link").get_json()
    assert info["state"] == "open" and info["options"]["bitrate"] == "128k"
    assert client.get(f"{path}/job").status_code == 404  # nothing uploaded yet

    accepted = guest_upload(client, path, clip)
    assert accepted.status_code == 202, accepted.get_json()
    job_id = accepted.get_json()["job_id"]
    assert accepted.get_json()["status_url"] == f"{path}/job"
    job = client.get(f"/jobs/{job_id}", headers=headers).get_json()  # the creator's job
    assert job["options"]["bitrate"] == "128k" and job["filename"] == "clip.mp4"
    assert client.get("/jobs", headers=headers).get_json()["total"] == 1
    progress = client.get(f"{path}/job").get_json()
    assert progress["id"] == job_id and progress["status"] == "queued"
    assert progress["download_url"] is None
    assert "owner_id" not in progress and owner["email"] not in str(progress)

    listed = client.get("/upload-links", headers=headers).get_json()
    assert [(k["id"], k["state"], k["job_id"]) for k in listed] == [(link["id"], "used", job_id)]
    assert "url" not in listed[0]
    again = guest_upload(client, path, clip)
    assert again.status_code == 410 and "used already" in again.get_json()["message"]
    assert client.get("/jobs", headers=headers).get_json()["total"] == 1


def test_a_wrong_token_is_404_and_an_expired_or_deleted_link_410(client, auth, clip, container):
    _, headers = auth.new_user()
    assert guest_upload(client, "/guest/" + "A" * 43, clip).status_code == 404
    assert guest_upload(client, "/guest/short", clip).status_code == 404
    assert client.get("/guest/" + "A" * 43 + "/link").status_code == 404

    expired, expired_path = make_link(client, headers, expires_in=60)
    with container.db.cursor() as cur:
        cur.execute(
            "UPDATE upload_links SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND "
            "WHERE id = %s",
            (expired["id"],),
        )
    refused = guest_upload(client, expired_path, clip)
    assert refused.status_code == 410 and refused.get_json()["message"].endswith("expired")
    assert client.get(f"{expired_path}/link").get_json()["state"] == "expired"

    deleted, deleted_path = make_link(client, headers)
    assert client.delete(f"/upload-links/{deleted['id']}", headers=headers).status_code == 204
    for response in (
        guest_upload(client, deleted_path, clip),
        client.get(f"{deleted_path}/link"),
        client.get(f"{deleted_path}/job"),
        client.get(f"{deleted_path}/mp3"),
    ):
        assert response.status_code == 410
        assert response.get_json()["message"] == "this upload link was deleted by its owner"
    assert client.delete(f"/upload-links/{deleted['id']}", headers=headers).status_code == 404
    assert [k["id"] for k in client.get("/upload-links", headers=headers).get_json()] == [
        expired["id"]
    ]
    assert client.get("/jobs", headers=headers).get_json()["total"] == 0


def test_a_link_whose_creator_was_deleted_is_404(client, auth, clip):
    owner, headers = auth.new_user()
    _, path = make_link(client, headers)
    assert client.delete(f"/users/{owner['id']}", headers=auth.admin()).status_code == 204
    gone = guest_upload(client, path, clip)
    assert gone.status_code == 404 and gone.get_json()["message"] == "no such upload link"


def test_only_the_creator_or_an_admin_deletes_a_link(client, auth):
    _, alice = auth.new_user()
    _, bob = auth.new_user()
    link, _ = make_link(client, alice)
    assert client.delete(f"/upload-links/{link['id']}", headers=bob).status_code == 404
    assert client.get("/upload-links", headers=bob).get_json() == []
    assert client.delete(f"/upload-links/{link['id']}", headers=auth.admin()).status_code == 204


def test_a_failed_upload_leaves_the_link_open(client, auth, clip):
    _, headers = auth.new_user()
    _, path = make_link(client, headers, max_mb=1)
    too_big = guest_upload(client, path, clip + os.urandom(2 * 2**20))
    assert too_big.status_code == 413 and "up to 1 MiB" in too_big.get_json()["message"]
    not_media = guest_upload(client, path, b"just some text, not a video")
    assert not_media.status_code == 415
    not_multipart = client.post(f"{path}/upload", data=clip, content_type="video/mp4")
    assert not_multipart.status_code == 415
    empty = client.post(
        f"{path}/upload", content_type="multipart/form-data", data={"other": "field"}
    )
    assert empty.status_code == 422
    assert client.get(f"{path}/link").get_json()["state"] == "open"
    assert guest_upload(client, path, clip).status_code == 202


def test_two_uploads_at_the_same_instant_make_exactly_one_job(app, client, auth, clip):
    _, headers = auth.new_user()
    _, path = make_link(client, headers)
    start = threading.Barrier(4)
    statuses: list[int] = []
    lock = threading.Lock()

    def use() -> None:
        own = app.test_client()
        start.wait(timeout=30)
        status = guest_upload(own, path, clip).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses).count(202) == 1, statuses
    assert set(statuses) <= {202, 409, 410}
    assert client.get("/jobs", headers=headers).get_json()["total"] == 1


def test_an_upload_under_way_answers_409_to_another(client, auth, clip, container):
    _, headers = auth.new_user()
    link, path = make_link(client, headers)
    now = datetime.now(timezone.utc)
    assert container.upload_link_repo.claim(link["id"], now, now, now)  # an upload under way
    busy = guest_upload(client, path, clip)
    assert busy.status_code == 409 and "being uploaded" in busy.get_json()["message"]


def test_the_guest_upload_counts_against_the_creators_quota(
    settings, container, auth, clip, tmp_path
):
    tight = settings.with_overrides(
        redis_prefix=settings.redis_prefix + f"l{os.urandom(3).hex()}:",
        data_dir=str(tmp_path),
        quota_active_jobs=1,
    )
    client = create_app(container=Container(tight, passwords=container.passwords)).test_client()
    user, _ = auth.new_user()
    headers = {
        "Authorization": "Bearer "
        + client.post(
            "/login",
            headers={"Authorization": "Basic " + b64encode(f"{user['email']}:password-1")},
        ).get_json()["access_token"]
    }
    _, path = make_link(client, headers)
    first = client.post(
        "/upload",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(clip), "mine.mp4")},
    )
    assert first.status_code == 202
    refused = guest_upload(client, path, clip)
    assert refused.status_code == 429
    assert refused.get_json()["errors"]["quota"]["limit"] == "QUOTA_ACTIVE_JOBS"
    assert client.get(f"{path}/link").get_json()["state"] == "open"
    assert guest_upload(client, path, clip).status_code == 429  # not 409: the claim was freed


def finish(container, job_id: str, data: bytes = b"ID3" + b"\x00" * 997) -> None:
    """Mark the job done with an MP3 in the store, as a conversion leaves it."""
    with container.blob_store.writer(MP3S, "clip.mp3", "audio/mpeg", {"job_id": job_id}) as mp3:
        mp3.write(data)
    container.job_repo.update(
        job_id,
        {"status": JobStatus.DONE, "mp3_fid": mp3.fid, "mp3_size": len(data), "progress": 100.0},
    )


def test_the_guest_downloads_only_when_the_creator_allowed_it(client, auth, clip, container):
    _, headers = auth.new_user()
    _, closed = make_link(client, headers)
    _, open_ = make_link(client, headers, allow_download=True)
    assert client.get(f"{open_}/mp3").status_code == 404  # nothing uploaded yet
    for path in (closed, open_):
        finish(container, guest_upload(client, path, clip).get_json()["job_id"])
    refused = client.get(f"{closed}/mp3")
    assert refused.status_code == 403 and "did not allow" in refused.get_json()["message"]
    assert client.get(f"{closed}/job").get_json()["download_url"] is None

    job = client.get(f"{open_}/job").get_json()
    assert job["status"] == "done" and job["download_url"] == f"{open_}/mp3"
    whole = client.get(job["download_url"])
    assert whole.status_code == 200 and whole.data.startswith(b"ID3") and len(whole.data) == 1000
    part = client.get(job["download_url"], headers={"Range": "bytes=0-2"})
    assert part.status_code == 206 and part.headers["Content-Range"] == "bytes 0-2/1000"
    past = client.get(job["download_url"], headers={"Range": "bytes=5000-"})
    assert past.status_code == 416


def test_a_bad_link_request_names_the_field(client, auth):
    _, headers = auth.new_user()
    for body, field in (
        ({"options": {"bitrate": "7k"}}, "bitrate"),
        ({"options": {"volume": "11"}}, "volume"),
        ({"max_mb": 10**6}, "max_mb"),
        ({"expires_in": 5}, "expires_in"),
        ({"allow_download": "maybe"}, "allow_download"),
        ({"passthrough": "x"}, "passthrough"),  # an unknown field
        ({"tag": 7}, "tag"),
    ):
        response = client.post("/upload-links", json=body, headers=headers)
        assert response.status_code == 422, body
        assert field in str(response.get_json()), (body, response.get_json())


def test_the_token_is_stored_only_as_a_hash(client, auth, container):
    _, headers = auth.new_user()
    link, path = make_link(client, headers)
    token = path.rsplit("/", 1)[1]
    with container.db.cursor() as cur:
        cur.execute("SELECT * FROM upload_links WHERE id = %s", (link["id"],))
        row = cur.fetchone()
    assert token not in repr(row) and uuid.UUID(link["id"])


# --- the one file over tus ---------------------------------------------------------------------

TUS = {"Tus-Resumable": "1.0.0"}


def tus_create(client, path: str, length: int, name: str = "long.mp4"):
    metadata = "filename " + b64encode(name)
    return client.post(
        f"{path}/uploads/",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata},
    )


def tus_patch(client, location: str, offset: int, data: bytes, **headers):
    return client.patch(
        location,
        data=data,
        headers={
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


def test_a_guest_sends_the_file_over_tus_in_pieces(client, auth, clip):
    _, headers = auth.new_user()
    link, path = make_link(client, headers, options={"bitrate": "192k"}, max_mb=5)
    created = tus_create(client, path, len(clip))
    assert created.status_code == 201, created.get_json()
    location = urlsplit(created.headers["Location"]).path
    assert location.startswith(f"{path}/uploads/") and created.headers["Upload-Offset"] == "0"
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert tus_create(client, path, len(clip)).status_code == 409  # the link's one upload
    half = len(clip) // 2
    assert tus_patch(client, location, 0, clip[:half]).status_code == 204
    assert tus_patch(client, location, 0, clip[half:]).status_code == 409  # wrong offset
    head = client.head(location, headers=TUS)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(half)
    assert head.headers["Upload-Length"] == str(len(clip))
    last = tus_patch(client, location, half, clip[half:])
    assert last.status_code == 204, last.get_json()
    job_id = last.headers["Vid2mp3-Job-Id"]
    assert last.headers["Vid2mp3-Job-Location"] == f"{path}/job"
    job = client.get(f"/jobs/{job_id}", headers=headers).get_json()
    assert job["options"]["bitrate"] == "192k" and job["filename"] == "long.mp4"
    assert client.get(f"{path}/job").get_json()["id"] == job_id
    listed = client.get("/upload-links", headers=headers).get_json()
    assert (listed[0]["state"], listed[0]["job_id"]) == ("used", job_id)
    again = tus_create(client, path, len(clip))
    assert again.status_code == 410 and "used already" in again.get_json()["message"]


def test_guest_tus_refusals(client, auth, clip):
    _, headers = auth.new_user()
    link, path = make_link(client, headers, max_mb=1)
    assert tus_create(client, "/guest/" + "B" * 43, 100).status_code == 404
    over = tus_create(client, path, 2 * 2**20)
    assert over.status_code == 413 and "up to 1 MiB" in over.get_json()["message"]
    no_version = client.post(f"{path}/uploads/", headers={"Upload-Length": "10"})
    assert no_version.status_code == 412
    no_length = client.post(f"{path}/uploads/", headers=TUS)
    assert no_length.status_code == 400
    with_body = client.post(
        f"{path}/uploads/",
        data=b"x" * 10,
        headers={**TUS, "Upload-Length": "10", "Content-Type": "application/offset+octet-stream"},
    )
    assert with_body.status_code == 400
    created = tus_create(client, path, len(clip))  # the refusals left the link open
    assert created.status_code == 201, created.get_json()
    location = urlsplit(created.headers["Location"]).path
    other = f"{path}/uploads/{'0' * 32}"
    assert client.head(location).status_code == 412  # no Tus-Resumable
    assert client.patch(location, data=b"x").status_code == 412
    assert client.head(other, headers=TUS).status_code == 404
    assert tus_patch(client, other, 0, b"x").status_code == 404
    assert tus_patch(client, location, 0, clip, **{"Content-Type": "text/plain"}).status_code == 415
    no_offset = client.patch(
        location, data=b"x", headers={**TUS, "Content-Type": "application/offset+octet-stream"}
    )
    assert no_offset.status_code == 400
    too_long = tus_patch(client, location, 0, clip + b"extra")
    assert too_long.status_code == 413
    bad_sum = tus_patch(client, location, 0, clip, **{"Upload-Checksum": "sha1 ###"})
    assert bad_sum.status_code == 422
    wrong_sum = tus_patch(
        client, location, 0, clip, **{"Upload-Checksum": "sha1 " + b64encode("x" * 20)}
    )
    assert wrong_sum.status_code == 460
    text = b"not a video at all" * 10
    _, text_path = make_link(client, headers)
    made = tus_create(client, text_path, len(text))
    text_location = urlsplit(made.headers["Location"]).path
    refused = tus_patch(client, text_location, 0, text)
    assert refused.status_code == 415
    assert client.get(f"{text_path}/link").get_json()["state"] == "open"  # may try again
    assert tus_create(client, text_path, len(clip)).status_code == 201

    assert client.delete(f"/upload-links/{link['id']}", headers=headers).status_code == 204
    assert client.head(location, headers=TUS).status_code == 410
    assert tus_patch(client, location, 0, clip).status_code == 410
    assert tus_create(client, path, 10).status_code == 410


def test_a_guest_tus_upload_counts_against_the_creators_quota(
    settings, container, auth, clip, tmp_path
):
    tight = settings.with_overrides(
        redis_prefix=settings.redis_prefix + f"t{os.urandom(3).hex()}:",
        data_dir=str(tmp_path),
        quota_active_jobs=1,
    )
    client = create_app(container=Container(tight, passwords=container.passwords)).test_client()
    user, _ = auth.new_user()
    token = client.post(
        "/login", headers={"Authorization": "Basic " + b64encode(f"{user['email']}:password-1")}
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    _, path = make_link(client, headers)
    created = tus_create(client, path, len(clip))
    assert created.status_code == 201
    location = urlsplit(created.headers["Location"]).path
    mine = client.post(
        "/upload",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(clip), "mine.mp4")},
    )
    assert mine.status_code == 202
    refused = tus_patch(client, location, 0, clip)
    assert refused.status_code == 429
    assert refused.get_json()["errors"]["quota"]["limit"] == "QUOTA_ACTIVE_JOBS"
    assert client.get(f"{path}/link").get_json()["state"] == "open"
    assert tus_create(client, path, len(clip)).status_code == 429  # not 409: the claim was freed
    _, second = make_link(client, headers)
    assert tus_create(client, second, len(clip)).status_code == 429  # no room: refused at once


# --- the job's tag and webhook_url, given with the link --------------------------------------


@pytest.fixture
def receiver():
    hook = Receiver(status=204)
    yield hook
    hook.close()


def test_the_links_tag_and_webhook_url_go_to_the_guests_job(
    settings, container, auth, clip, receiver
):
    """Multipart and tus alike: GET /jobs?tag= finds the guest's job, which shows the link's
    webhook_url; its events go there signed with the creator's secret (a receiver on loopback:
    WEBHOOK_ALLOW_PRIVATE on for this app only)."""
    local = Container(
        settings.with_overrides(webhook_allow_private=True), passwords=container.passwords
    )
    client = create_app(container=local).test_client()
    _, headers = auth.new_user()
    hook = receiver.url
    link, path = make_link(client, headers, tag="order-42", webhook_url=hook)
    assert (link["tag"], link["webhook_url"]) == ("order-42", hook)
    by_tus, tus_path = make_link(client, headers, tag="order-43")
    assert (by_tus["tag"], by_tus["webhook_url"]) == ("order-43", None)
    listed = client.get("/upload-links", headers=headers).get_json()
    assert {(k["tag"], k["webhook_url"]) for k in listed} == {
        ("order-42", hook),
        ("order-43", None),
    }

    accepted = guest_upload(client, path, clip)
    assert accepted.status_code == 202, accepted.get_json()
    job_id = accepted.get_json()["job_id"]
    location = urlsplit(tus_create(client, tus_path, len(clip)).headers["Location"]).path
    last = tus_patch(client, location, 0, clip)
    assert last.status_code == 204, last.get_json()

    found = client.get("/jobs?tag=order-42", headers=headers).get_json()["items"]
    assert [(j["id"], j["tag"], j["webhook_url"]) for j in found] == [(job_id, "order-42", hook)]
    found = client.get("/jobs?tag=order-43", headers=headers).get_json()["items"]
    assert [(j["id"], j["tag"]) for j in found] == [(last.headers["Vid2mp3-Job-Id"], "order-43")]

    assert client.post(f"/jobs/{job_id}/cancel", headers=headers).status_code == 200
    for delivery_id in local.webhooks.emit(job_id, "job.cancelled"):  # as the webhooks worker
        assert local.webhooks.deliver(delivery_id) == "delivered"
    secret = client.get("/webhooks/secret", headers=headers).get_json()["secret"]
    [(received_headers, body)] = receiver.received
    message = Webhook(secret).verify(body, received_headers)  # raises unless signed with it
    assert message["type"] == "job.cancelled" and message["data"]["tag"] == "order-42"


def test_a_bad_tag_or_a_private_webhook_url_is_refused(client, auth):
    """The session's API (WEBHOOK_ALLOW_PRIVATE off) refuses a receiver on a private address,
    as POST /upload does; no link is made."""
    _, headers = auth.new_user()
    for fields, name in (
        ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_url"),
        ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url"),
        ({"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
        ({"tag": "t" * 256}, "tag"),
    ):
        refused = client.post("/upload-links", json=fields, headers=headers)
        assert refused.status_code == 422, (fields, refused.get_json())
        assert name in str(refused.get_json()), refused.get_json()
    assert client.get("/upload-links", headers=headers).get_json() == []
