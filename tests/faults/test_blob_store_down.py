"""The GridFS server going away under a running stack, and uploads over the size limit."""

from __future__ import annotations

import os

import pytest
from pymongo import MongoClient

from tests.support.client import login
from tests.support.jobs import start_job, wait_job
from tests.support.mongo import MongoServer
from tests.support.stack import running_stack

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    server = MongoServer(str(tmp_path_factory.mktemp("mongo")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gridfs_stack(mongo, tmp_path_factory):
    env = {"MONGO_URI": mongo.uri, "MONGO_DATABASE": "vid2mp3_faults", "MAX_UPLOAD_MB": "1"}
    with running_stack(tmp_path_factory.mktemp("gridfs-faults"), env) as stack:
        yield stack


@pytest.fixture(scope="module")
def user(gridfs_stack):
    admin = login(
        gridfs_stack, gridfs_stack.settings.admin_email, gridfs_stack.settings.admin_password
    )
    assert (
        admin.post(
            "/users",
            json={"name": "gridfs", "email": "gridfs@example.com", "password": "password-1"},
        ).status_code
        == 201
    )
    return login(gridfs_stack, "gridfs@example.com", "password-1")


def stored_videos(mongo) -> int:
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=3000) as client:
        return len(list(client["vid2mp3_faults"]["videos.files"].find({}, {"_id": 1})))


def test_blob_store_down_is_503_and_leaves_no_job(gridfs_stack, mongo, user, tmp_path):
    from tests.support import media

    clip = media.make_video(tmp_path, seconds=2.0)
    before = stored_videos(mongo)
    mongo.stop()
    try:
        with open(clip, "rb") as fh:
            response = user.post("/upload", files={"file": ("clip.mp4", fh)}, timeout=60)
        assert response.status_code == 503 and response.json()["code"] == "unavailable"
    finally:
        mongo.start()
    assert user.get("/jobs").json()["total"] == 0
    assert stored_videos(mongo) == before
    job = wait_job(user, start_job(user, clip))  # and it works again, without a restart
    assert job["status"] == "done"


def test_oversized_uploads_store_nothing(gridfs_stack, mongo, user, tmp_path):
    before = stored_videos(mongo)
    jobs_before = user.get("/jobs").json()["total"]
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3 * 1024 * 1024))
    with open(big, "rb") as fh:  # declared length over the limit: refused before reading
        declared = user.post("/upload", files={"file": ("big.mp4", fh)})
    assert declared.status_code == 413 and declared.json()["code"] == "too_large"

    def chunked():  # no Content-Length: the limit is enforced while streaming
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"'
        yield b"\r\nContent-Type: video/mp4\r\n\r\n"
        with open(big, "rb") as fh:
            while block := fh.read(256 * 1024):
                yield block
        yield b"\r\n" + boundary + b"--\r\n"

    streamed = user.post(
        "/upload",
        data=chunked(),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert streamed.status_code == 413
    assert stored_videos(mongo) == before
    assert user.get("/jobs").json()["total"] == jobs_before
