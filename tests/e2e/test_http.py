"""Conditional and partial responses over the real gunicorn stack: downloads and job polling."""

from __future__ import annotations

import email.parser
import os

import pytest

from tests.support import media
from tests.support.client import login
from tests.support.wait import wait_for

# The API's own conditional and partial responses: the S3 stack answers downloads by presigned
# redirect, and S3 serves their Range (tests/integration/test_presigned_downloads.py).
pytestmark = [pytest.mark.e2e, pytest.mark.stores("directory", "gridfs")]


def upload(client, path):
    with open(path, "rb") as fh:
        accepted = client.post("/upload", files={"file": (os.path.basename(path), fh)})
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["job_id"]


def wait_done(client, job_id):
    job = wait_for(
        lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
            client.get(f"/jobs/{job_id}").json()
        ),
        timeout=60,
        what=f"job {job_id} to finish",
    )
    assert job["status"] == "done", job
    return job


@pytest.fixture(scope="module")
def user(stack, admin):
    email = f"http-{stack.blob_store}@example.com"
    created = admin.post(
        "/users",
        json={"name": f"http-{stack.blob_store}", "email": email, "password": "password-1"},
    )
    assert created.status_code == 201, created.text
    return login(stack, email, "password-1")


@pytest.fixture(scope="module")
def job(user, clip):
    return wait_done(user, upload(user, clip))


@pytest.fixture(scope="module", params=["by-job", "by-fid"])
def mp3(request, user, job):
    """The MP3 URL (either route), the MP3 downloaded whole, and its ETag."""
    url = {"by-job": f"/jobs/{job['id']}/mp3", "by-fid": f"/download?fid={job['mp3_fid']}"}[
        request.param
    ]
    whole = user.get(url)
    assert whole.status_code == 200 and len(whole.content) == job["mp3_size"]
    return url, whole.content, whole.headers["ETag"]


def test_head_gives_the_download_headers_without_a_body(user, mp3):
    url, whole, etag = mp3
    head = user.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(whole))
    assert head.headers["Content-Type"] == "audio/mpeg"
    assert head.headers["ETag"] == etag and head.headers["Accept-Ranges"] == "bytes"
    assert head.headers["Cache-Control"] == "private, max-age=0"
    assert head.headers["Content-Disposition"].startswith('attachment; filename="video_')


def test_if_none_match_with_the_current_etag_is_a_304(user, mp3):
    url, whole, etag = mp3
    cached = user.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["ETag"] == etag
    changed = user.get(url, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == whole


def test_if_match_with_another_etag_is_a_412_in_the_error_shape(user, mp3):
    url, whole, etag = mp3
    refused = user.get(url, headers={"If-Match": '"an-old-version"'})
    assert refused.status_code == 412 and refused.json()["code"] == "precondition_failed"
    matching = user.get(url, headers={"If-Match": etag})
    assert matching.status_code == 200 and matching.content == whole


def test_a_job_polled_with_if_match_for_another_etag_is_a_412(user, job):
    url = f"/jobs/{job['id']}"
    refused = user.get(url, headers={"If-Match": '"an-old-version"'})
    assert refused.status_code == 412 and refused.json()["code"] == "precondition_failed"
    current = user.get(url).headers["ETag"]
    assert user.get(url, headers={"If-Match": current}).status_code == 200


def test_if_range_sends_a_part_only_while_the_etag_is_current(user, mp3):
    url, whole, etag = mp3
    stale = user.get(url, headers={"Range": "bytes=100-199", "If-Range": '"an-old-version"'})
    assert stale.status_code == 200 and stale.content == whole
    assert "Content-Range" not in stale.headers
    current = user.get(url, headers={"Range": "bytes=100-199", "If-Range": etag})
    assert current.status_code == 206 and current.content == whole[100:200]
    assert current.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert current.headers["Content-Length"] == "100"


@pytest.mark.parametrize("span", ["bytes=1000-", "bytes=-10", "bytes=7-7"])
def test_single_ranges_are_the_right_bytes(user, mp3, span):
    url, whole, _ = mp3
    first, _, last = span.removeprefix("bytes=").partition("-")
    if not first:
        expected = whole[-int(last) :]
    else:
        expected = whole[int(first) : int(last) + 1 if last else None]
    part = user.get(url, headers={"Range": span})
    assert part.status_code == 206 and part.content == expected
    assert part.headers["Content-Length"] == str(len(expected))


def test_a_multi_range_request_gets_the_right_bytes(user, mp3):
    url, whole, _ = mp3
    response = user.get(url, headers={"Range": "bytes=0-9,200-299"})
    # RFC 9110 allows either the whole file (the Range ignored) or multipart/byteranges.
    if response.status_code == 200:
        assert response.content == whole
    else:
        assert response.status_code == 206, response.text
        assert response.headers["Content-Type"].startswith("multipart/byteranges")
        message = email.parser.BytesParser().parsebytes(
            b"Content-Type: "
            + response.headers["Content-Type"].encode()
            + b"\r\n\r\n"
            + response.content
        )
        parts = [
            (part["Content-Range"], part.get_payload(decode=True)) for part in message.get_payload()
        ]
        assert parts == [
            (f"bytes 0-9/{len(whole)}", whole[0:10]),
            (f"bytes 200-299/{len(whole)}", whole[200:300]),
        ]


@pytest.mark.parametrize("span", ["bytes={size}-", "bytes={size}-{size}"])
def test_an_unsatisfiable_range_is_a_416_in_the_error_shape(user, mp3, span):
    url, whole, _ = mp3
    response = user.get(url, headers={"Range": span.format(size=len(whole))})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(whole)}"
    assert response.json() == {
        "status": 416,
        "code": "range_not_satisfiable",
        "message": "range not satisfiable",
    }


def test_polling_a_job_gets_a_304_until_it_changes(user, media_dir):
    job_id = upload(user, media.make_video(media_dir, seconds=20.0))
    first = user.get(f"/jobs/{job_id}")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and first.json()["status"] != "done"
    again = user.get(f"/jobs/{job_id}", headers={"If-None-Match": etag})
    assert again.status_code in (200, 304)
    if again.status_code == 304:
        assert again.content == b"" and again.headers["ETag"] == etag

    def changed():
        response = user.get(f"/jobs/{job_id}", headers={"If-None-Match": etag})
        if response.status_code == 304:
            assert response.content == b"" and response.headers["ETag"] == etag
            return None
        return response

    later = wait_for(changed, timeout=60, interval=0.1, what="the job to change")
    assert later.status_code == 200 and later.headers["ETag"] != etag
    assert later.json() != first.json()
    wait_for(
        lambda: user.get(f"/jobs/{job_id}").json()["notified_at"],
        timeout=60,
        what="the owner to be notified",
    )  # the last change a job sees
    current = user.get(f"/jobs/{job_id}")
    assert current.json()["status"] == "done"
    cached = user.get(f"/jobs/{job_id}", headers={"If-None-Match": current.headers["ETag"]})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["ETag"] == current.headers["ETag"]
