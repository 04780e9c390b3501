"""The S3 server going away under a running stack on the S3 store (SeaweedFS of its own): clear
503s with Retry-After, conversions retried to the end with nothing half-written left; and a
missing bucket or refused credentials: the processes run, /readyz says why, uploads are 503."""

from __future__ import annotations

import os
import tempfile

import pytest
import requests

from tests.support import media
from tests.support.client import login
from tests.support.s3 import S3Server
from tests.support.stack import running_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.faults
PASSWORD = "password-1"


@pytest.fixture(scope="module")
def s3():
    with tempfile.TemporaryDirectory(prefix="seaweedfs-faults-") as workdir:
        server = S3Server(workdir)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def bucket(s3):
    name = s3.new_bucket("faults")
    yield name
    if not s3.running:
        s3.start()
    s3.drop_bucket(name)


@pytest.fixture(scope="module")
def s3_stack(s3, bucket, tmp_path_factory):
    env = {**s3.env(bucket, prefix="faults/"), "S3_PRESIGNED_DOWNLOADS": "true"}
    with pytest.MonkeyPatch.context() as patch:  # the tests' own container signs too
        patch.setenv("AWS_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
        patch.setenv("AWS_SECRET_ACCESS_KEY", env["AWS_SECRET_ACCESS_KEY"])
        with running_stack(tmp_path_factory.mktemp("s3-faults"), env) as stack:
            yield stack


@pytest.fixture(scope="module")
def user(s3_stack):
    stack = s3_stack
    admin = login(stack, stack.settings.admin_email, stack.settings.admin_password)
    created = admin.post(
        "/users", json={"name": "s3faults", "email": "s3faults@example.com", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    return login(stack, "s3faults@example.com", PASSWORD)


@pytest.fixture(autouse=True)
def s3_comes_back(s3):
    yield
    if not s3.running:
        s3.start()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return media.make_video(tmp_path_factory.mktemp("s3-fault-media"), seconds=2.0)


def post_video(user, path: str):
    with open(path, "rb") as fh:
        return user.post("/upload", files={"file": (os.path.basename(path), fh)}, timeout=90)


def finished(user, job_id: str, timeout: float = 120) -> dict:
    return wait_for(
        lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
            user.get(f"/jobs/{job_id}").json()
        ),
        timeout=timeout,
        what=f"job {job_id} to finish",
    )


def is_503_with_retry_after(response) -> bool:
    return (
        response.status_code == 503
        and response.json()["code"] == "unavailable"
        and int(response.headers["Retry-After"]) > 0
    )


def objects(s3: S3Server, bucket: str) -> tuple[list[str], list[str]]:
    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    pending = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return sorted(keys), pending


def test_s3_down_uploads_and_downloads_are_503_then_work_again(s3, bucket, user, clip):
    job = finished(user, post_video(user, clip).json()["job_id"])
    assert job["status"] == "done"
    jobs_before = user.get("/jobs").json()["total"]
    s3.stop()
    refused = post_video(user, clip)
    assert is_503_with_retry_after(refused), refused.text
    # A download that reads the object's metadata first (by file id) finds S3 gone: 503.
    download = user.get("/download", params={"fid": job["mp3_fid"]}, allow_redirects=False)
    assert is_503_with_retry_after(download), download.text
    # The redirect needs no word from S3 (the bucket answers for the bytes): still a 302.
    assert user.get(f"/jobs/{job['id']}/mp3", allow_redirects=False).status_code == 302
    s3.start()
    assert user.get("/jobs").json()["total"] == jobs_before  # no job for the refused upload
    again = finished(user, post_video(user, clip).json()["job_id"])  # no restart needed
    assert again["status"] == "done"
    moved = user.get(f"/jobs/{job['id']}/mp3", allow_redirects=False)
    assert moved.status_code == 302
    assert requests.get(moved.headers["Location"], timeout=30).content[:3] in (b"ID3", b"\xff\xfb")


def test_s3_stopped_mid_upload_is_503_and_the_upload_leaves_nothing(s3, bucket, user):
    before, _ = objects(s3, bucket)
    boundary = "s3-fault-boundary"
    chunk = os.urandom(1 << 20)

    def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"'
            "\r\nContent-Type: video/mp4\r\n\r\n"
        ).encode() + b"\x00\x00\x00\x18ftypmp42"
        for sent in range(40):
            if sent == 12:  # a part is in S3: a multipart upload is open
                s3.stop()
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        answer = user.post(
            "/upload",
            data=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=120,
        )
    except requests.ConnectionError:
        pytest.fail("the API cut the connection instead of answering 503")
    assert is_503_with_retry_after(answer), answer.text
    s3.start()
    keys, _ = objects(s3, bucket)
    assert [key for key in keys if key not in before and "/videos/" in key] == []


def test_s3_down_mid_conversion_is_retried_and_leaves_one_mp3(s3, bucket, user, s3_stack, tmp_path):
    long_input = media.make_audio_only(tmp_path, seconds=600, fmt="m4a")
    accepted = post_video(user, long_input)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    wait_for(
        lambda: user.get(f"/jobs/{job_id}").json()["status"] == "converting",
        timeout=60,
        what="the conversion to start",
    )
    s3.stop()  # the MP3 cannot be stored: the conversion fails and is retried
    wait_for(
        lambda: "retrying" in s3_stack.log("worker-convert"),
        timeout=120,
        what="the convert worker to retry",
    )
    s3.start()
    job = finished(user, job_id, timeout=240)
    assert job["status"] == "done", job
    keys, pending = objects(s3, bucket)
    mp3s = [k for k in keys if "/mp3s/" in k]
    assert f"faults/mp3s/{job['mp3_fid']}" in mp3s
    jobs = user.get("/jobs", params={"per_page": 100}).json()["items"]
    assert len(mp3s) == len([j for j in jobs if j.get("mp3_fid")])  # nothing half-written
    # No orphaned multipart upload of an MP3 after the retry succeeded. (An upload cut by the
    # earlier test may still be pending: its API process aborts it at its next write, or the
    # bucket's lifecycle rule does.)
    assert [key for key in pending if "/mp3s/" in key] == []


def test_a_missing_bucket_is_named_by_readyz_and_uploads_are_503(s3, bucket, user, s3_stack, clip):
    client = s3.client()
    parked = s3.new_bucket("parked")
    keys, _ = objects(s3, bucket)
    for key in keys:
        client.copy_object(Bucket=parked, Key=key, CopySource={"Bucket": bucket, "Key": key})
    s3.drop_bucket(bucket)
    try:
        ready = requests.get(s3_stack.url("/readyz"), timeout=10)
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable: blob_store (the S3 bucket does not exist)"
        assert requests.get(s3_stack.url("/healthz"), timeout=10).status_code == 200
        assert is_503_with_retry_after(post_video(user, clip))
    finally:
        client.create_bucket(Bucket=bucket)
        for key in keys:
            client.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": parked, "Key": key})
        s3.drop_bucket(parked)
    assert requests.get(s3_stack.url("/readyz"), timeout=10).status_code == 200


def test_refused_credentials_start_the_api_and_readyz_names_them(s3, user, s3_stack, clip):
    stack = s3_stack
    stack.process_env["api"] = {"AWS_SECRET_ACCESS_KEY": "not-" + s3.credentials.secret_key}
    stack.stop("api")
    stack.start("api")
    try:
        wait_for(lambda: _answers(stack.url("/healthz")), timeout=60, what="the API to start again")
        ready = requests.get(stack.url("/readyz"), timeout=10)
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable: blob_store (S3 refused the credentials)"
        assert s3.credentials.secret_key not in ready.text
        assert is_503_with_retry_after(post_video(user, clip))
    finally:
        stack.process_env.pop("api")
        stack.stop("api")
        stack.start("api")
        wait_for(lambda: _answers(stack.url("/readyz")), timeout=60, what="the API back")
    assert "not-" + s3.credentials.secret_key not in stack.log("api")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
