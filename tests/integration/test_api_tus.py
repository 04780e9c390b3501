"""The tus protocol at /uploads/ over the test client, on real Redis, MariaDB and the directory
store: headers, ownership, the negative cases, and a finished upload becoming a job."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def create(client, headers, length=None, metadata=None, **extra):
    length = len(MP4) if length is None else length
    meta = ",".join(f"{k} {b64(v)}" for k, v in (metadata or {"filename": "clip.mp4"}).items())
    return client.post(
        "/uploads/",
        headers={**headers, **TUS, "Upload-Length": str(length), "Upload-Metadata": meta, **extra},
    )


def patch(client, headers, location, offset, data, **extra):
    return client.patch(
        location,
        data=data,
        headers={**headers, **TUS, "Upload-Offset": str(offset), "Content-Type": OCTETS, **extra},
    )


def path_of(response) -> str:
    return "/" + response.headers["Location"].split("/", 3)[3]


def test_options_advertises_the_server(client):
    response = client.options("/uploads/")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert int(response.headers["Tus-Max-Size"]) == 2048 * 2**20
    assert "sha1" in response.headers["Tus-Checksum-Algorithm"].split(",")


def test_create_head_patch_to_a_job(client, auth):
    _, headers = auth.new_user()
    created = create(client, headers, metadata={"filename": "holiday.mp4", "bitrate": "128k"})
    assert created.status_code == 201, created.get_json()
    assert created.headers["Tus-Resumable"] == "1.0.0" and created.headers["Upload-Expires"]
    location = path_of(created)
    head = client.head(location, headers={**headers, **TUS})
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(MP4))
    assert head.headers["Cache-Control"] == "no-store"

    first = patch(client, headers, location, 0, MP4[:1000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "1000"
    assert "Vid2mp3-Job-Id" not in first.headers
    digest = b64(hashlib.sha1(MP4[1000:]).digest())
    last = patch(
        client, headers, location, 1000, MP4[1000:], **{"Upload-Checksum": f"sha1 {digest}"}
    )
    assert last.status_code == 204 and last.headers["Upload-Offset"] == str(len(MP4))
    job_id = last.headers["Vid2mp3-Job-Id"]
    assert last.headers["Vid2mp3-Job-Location"] == f"/jobs/{job_id}"
    job = client.get(f"/jobs/{job_id}", headers=headers).get_json()
    assert job["status"] in ("queued", "converting", "failed", "done")
    assert job["bitrate"] == "128k" and job["video_size"] == len(MP4)
    assert client.head(location, headers={**headers, **TUS}).headers["Vid2mp3-Job-Id"] == job_id


def test_creation_with_upload(client, auth):
    _, headers = auth.new_user()
    created = client.post(
        "/uploads/",
        data=MP4[:500],
        headers={**headers, **TUS, "Upload-Length": str(len(MP4)), "Content-Type": OCTETS},
    )
    assert created.status_code == 201 and created.headers["Upload-Offset"] == "500"
    head = client.head(path_of(created), headers={**headers, **TUS})
    assert head.headers["Upload-Offset"] == "500"


@pytest.mark.parametrize("version", [None, "0.2.2", "2.0.0"])
def test_tus_resumable_missing_or_unsupported_is_412(client, auth, version):
    _, headers = auth.new_user()
    extra = {"Tus-Resumable": version} if version else {}
    response = client.post("/uploads/", headers={**headers, **extra, "Upload-Length": "10"})
    assert response.status_code == 412 and response.headers["Tus-Version"] == "1.0.0"
    assert response.get_json()["code"] == "precondition_failed"


def test_wrong_offset_409_wrong_checksum_460(client, auth):
    _, headers = auth.new_user()
    location = path_of(create(client, headers))
    assert patch(client, headers, location, 0, MP4[:100]).status_code == 204
    wrong = patch(client, headers, location, 50, MP4[50:150])
    assert wrong.status_code == 409 and wrong.get_json()["code"] == "conflict"
    bad = patch(
        client,
        headers,
        location,
        100,
        MP4[100:200],
        **{"Upload-Checksum": f"sha1 {b64(hashlib.sha1(b'other').digest())}"},
    )
    assert bad.status_code == 460 and bad.get_json()["code"] == "checksum_mismatch"
    assert client.head(location, headers={**headers, **TUS}).headers["Upload-Offset"] == "100"
    unknown = patch(
        client, headers, location, 100, MP4[100:200], **{"Upload-Checksum": f"crc32 {b64(b'1234')}"}
    )
    assert unknown.status_code == 422


def test_size_ceiling_and_bad_metadata(client, auth, settings):
    _, headers = auth.new_user()
    too_big = create(client, headers, length=settings.max_upload_bytes + 1)
    assert too_big.status_code == 413 and too_big.get_json()["code"] == "too_large"
    bad_bitrate = create(client, headers, metadata={"bitrate": "999k"})
    assert bad_bitrate.status_code == 422
    location = path_of(create(client, headers, length=100))
    past_end = patch(client, headers, location, 0, MP4[:101])
    assert past_end.status_code == 413
    not_octets = client.patch(
        location,
        data=b"x",
        headers={**headers, **TUS, "Upload-Offset": "0", "Content-Type": "application/json"},
    )
    assert not_octets.status_code == 415


def test_others_get_404_and_delete_removes(client, auth):
    _, alice = auth.new_user()
    _, bob = auth.new_user()
    location = path_of(create(client, alice))
    assert client.head(location, headers={**bob, **TUS}).status_code == 404
    assert patch(client, bob, location, 0, MP4).status_code == 404
    assert client.delete(location, headers={**bob, **TUS}).status_code == 404
    assert client.head(location, headers={**alice, **TUS}).status_code == 200
    assert client.delete(location, headers={**alice, **TUS}).status_code == 204
    assert client.head(location, headers={**alice, **TUS}).status_code == 404
    assert client.head("/uploads/", headers={**alice, **TUS}).status_code in (404, 405)
    assert client.post("/uploads/", headers={**TUS, "Upload-Length": "10"}).status_code == 401


def test_expired_upload_is_410(client, auth, container):
    _, headers = auth.new_user()
    location = path_of(create(client, headers))
    upload_id = location.rsplit("/", 1)[1]
    # as if a day had passed without a PATCH
    container.upload_repo.update(upload_id, {"expires_at": time.time() - 1})
    assert client.head(location, headers={**headers, **TUS}).status_code == 410
    assert patch(client, headers, location, 0, MP4).status_code == 410
    assert container.uploads.purge_expired() >= 1
    assert client.head(location, headers={**headers, **TUS}).status_code == 404


def test_browser_tus_clients_pass_cors(settings, container):
    from api import create_app
    from core.bootstrap import Container

    browser = create_app(
        container=Container(
            settings.with_overrides(cors_origins="https://app.example.com"),
            passwords=container.passwords,
        )
    ).test_client()
    origin = {"Origin": "https://app.example.com"}
    for path, method in (
        ("/uploads/", "POST"),
        ("/uploads/" + "0" * 32, "PATCH"),
        ("/uploads/" + "0" * 32, "HEAD"),
    ):
        preflight = browser.options(
            path, headers={**origin, "Access-Control-Request-Method": method}
        )
        assert preflight.status_code in (200, 204)
        assert method in preflight.headers["Access-Control-Allow-Methods"]
        allowed = {
            h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert {
            "tus-resumable",
            "upload-length",
            "upload-metadata",
            "upload-offset",
            "upload-checksum",
            "idempotency-key",
        } <= allowed
    exposed = browser.options("/uploads/", headers=origin).headers["Access-Control-Expose-Headers"]
    for name in ("Location", "Upload-Offset", "Vid2mp3-Job-Id", "Tus-Resumable"):
        assert name in exposed


def test_a_retried_creation_with_the_same_key_resumes_the_same_upload(client, auth):
    _, headers = auth.new_user()
    key = {"Idempotency-Key": "create-once"}
    first = create(client, headers, **key)
    assert first.status_code == 201
    location = path_of(first)
    assert patch(client, headers, location, 0, MP4[:1000]).status_code == 204

    # the client never saw the 201 and sends the creation again, first bytes and all
    again = client.post(
        "/uploads/",
        data=MP4[:500],
        headers={
            **headers,
            **TUS,
            **key,
            "Upload-Length": str(len(MP4)),
            "Upload-Metadata": f"filename {b64('clip.mp4')}",
            "Content-Type": OCTETS,
        },
    )
    assert again.status_code == 201 and path_of(again) == location
    assert again.headers["Upload-Offset"] == "1000"  # nothing appended twice
    assert client.head(location, headers={**headers, **TUS}).headers["Upload-Offset"] == "1000"

    job_id = patch(client, headers, location, 1000, MP4[1000:]).headers["Vid2mp3-Job-Id"]
    after = create(client, headers, **key)
    assert after.status_code == 201 and path_of(after) == location
    assert after.headers["Vid2mp3-Job-Id"] == job_id
    assert client.get("/jobs", headers=headers).get_json()["total"] == 1


def test_a_key_for_another_creation_is_422_and_one_in_flight_409(client, auth, container):
    user, headers = auth.new_user()
    assert create(client, headers, **{"Idempotency-Key": "k"}).status_code == 201
    other = create(client, headers, metadata={"filename": "other.mp4"}, **{"Idempotency-Key": "k"})
    assert other.status_code == 422 and "different request" in other.get_json()["message"]
    longer = create(client, headers, length=len(MP4) + 1, **{"Idempotency-Key": "k"})
    assert longer.status_code == 422
    # a creation with this key is being answered right now (another connection holds it)
    container.idempotency.reserve(user["id"], "busy", 60)
    busy = create(client, headers, **{"Idempotency-Key": "busy"})
    assert busy.status_code == 409 and busy.get_json()["code"] == "conflict"
    # one user's key is not another's
    _, stranger = auth.new_user()
    assert create(client, stranger, **{"Idempotency-Key": "k"}).status_code == 201
