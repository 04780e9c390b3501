"""End-to-end fixtures: a running stack per blob store, a real SMTP server, test media."""

from __future__ import annotations

import os
from contextlib import ExitStack

import pytest

from tests.support import media
from tests.support.client import login
from tests.support.mongo import running_mongo
from tests.support.smtp import smtp_server
from tests.support.stack import running_stack

STORES = ("directory", "gridfs", "s3")


def pytest_configure(config):
    config.addinivalue_line("markers", "stores(*names): run only against these blob stores")


def pytest_generate_tests(metafunc):
    """A test using `stack` runs once per blob store, or per store its `stores` mark names."""
    explicit = any(
        "stack" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")
    )
    if "stack" in metafunc.fixturenames and not explicit:
        marker = metafunc.definition.get_closest_marker("stores")
        stores = [store for store in STORES if marker is None or store in marker.args]
        metafunc.parametrize("stack", stores, indirect=True, scope="session")


@pytest.fixture(scope="session")
def smtp():
    with smtp_server() as (inbox, port):
        yield inbox, port


@pytest.fixture(scope="session")
def mongo_uri():
    with running_mongo() as uri:
        yield uri


@pytest.fixture(scope="session")
def stack(request, tmp_path_factory, smtp):
    _, smtp_port = smtp
    extra = {
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        # webhook receivers of the tests listen on loopback; retries come fast
        "WEBHOOK_ALLOW_PRIVATE": "true",
        # imports by URL fetch from the tests' own web servers on loopback (the guard with it
        # off is tested in tests/integration/test_imports.py)
        "IMPORT_ALLOW_PRIVATE": "true",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
        # a held receiver keeps its slot long enough for the fairness test to watch
        "WEBHOOK_TIMEOUT_SECONDS": "30",
    }
    if request.param == "gridfs":
        extra["MONGO_URI"] = request.getfixturevalue("mongo_uri")
        extra["MONGO_DATABASE"] = f"vid2mp3_e2e_{tmp_path_factory.mktemp('x').name}"
    with ExitStack() as cleanups:
        if request.param == "s3":
            server = request.getfixturevalue("s3_server")
            bucket = server.new_bucket("e2e")
            cleanups.callback(server.drop_bucket, bucket)
            # Downloads by presigned redirect: the clients of the tests follow them.
            extra.update(server.env(bucket, prefix="e2e/"), S3_PRESIGNED_DOWNLOADS="true")
            # The tests' own container (stack.container) takes credentials from the AWS chain.
            patch = cleanups.enter_context(pytest.MonkeyPatch.context())
            patch.setenv("AWS_ACCESS_KEY_ID", extra["AWS_ACCESS_KEY_ID"])
            patch.setenv("AWS_SECRET_ACCESS_KEY", extra["AWS_SECRET_ACCESS_KEY"])
        tmp = tmp_path_factory.mktemp(f"stack-{request.param}")
        with running_stack(tmp, extra, flower=request.param == "directory") as running:
            running.blob_store = request.param
            yield running


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip(media_dir):
    """A 3 s H.264/AAC MP4 with its index at the end, as phones write them."""
    return media.make_video(media_dir, seconds=3.0)


@pytest.fixture(scope="session")
def long_input(media_dir):
    """Ten minutes of sound: a few seconds of ffmpeg work, long enough to cancel."""
    return media.make_audio_only(media_dir, seconds=600, fmt="m4a")


@pytest.fixture(scope="session")
def admin(stack):
    settings = stack.settings
    return login(stack, settings.admin_email, settings.admin_password)


_users = iter(range(1, 10_000))


@pytest.fixture
def new_user(stack, admin):
    def make():
        n = next(_users)
        email = f"e2e{n}-{stack.blob_store}@example.com"
        created = admin.post(
            "/users",
            json={"name": f"e2e{n}-{stack.blob_store}", "email": email, "password": "password-1"},
        )
        assert created.status_code == 201, created.text
        return login(stack, email, "password-1"), email

    return make


@pytest.fixture
def stored_videos(stack):
    """The uploads the stack's blob store physically holds, read past the API: file names in
    the directory store, ids in GridFS, or object keys in S3."""

    def names():
        settings = stack.settings
        if settings.s3_bucket:
            s3 = stack.container.blob_store.client()
            where = {"Bucket": settings.s3_bucket, "Prefix": f"{settings.s3_prefix}videos/"}
            return sorted(o["Key"] for o in s3.list_objects_v2(**where).get("Contents", []))
        if not settings.mongo_uri:
            directory = os.path.join(settings.data_dir, "blobs", "videos")
            return sorted(os.listdir(directory)) if os.path.isdir(directory) else []
        from pymongo import MongoClient

        with MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=3000) as client:
            return sorted(
                str(doc["_id"])
                for doc in client[settings.mongo_database]["videos.files"].find({}, {"_id": 1})
            )

    return names
