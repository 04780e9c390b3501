"""The S3 server going away under the S3 store, and coming back: clear Unavailable errors, and
no multipart upload left behind once writes succeed again. A server of its own (it is stopped)."""

from __future__ import annotations

import os
import tempfile

import pytest

from core.adapters.stores.s3 import PART_SIZE, S3BlobStore, S3Location
from core.domain.errors import NotFound, Unavailable
from tests.support.s3 import S3Server

VIDEOS = "videos"


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="seaweedfs-outage-") as workdir:
        running = S3Server(workdir)
        running.start()
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture
def store(server):
    if not server.running:
        server.start()
    bucket = server.new_bucket()
    location = S3Location(bucket=bucket, prefix="o/", endpoint_url=server.endpoint_url)
    yield S3BlobStore(lambda: server.client(connect_timeout=1, read_timeout=5), location)
    if not server.running:
        server.start()
    server.drop_bucket(bucket)


def pending(server: S3Server, store: S3BlobStore) -> list[str]:
    answer = server.client().list_multipart_uploads(Bucket=store.s3_bucket)
    return [upload["Key"] for upload in answer.get("Uploads", [])]


def test_a_write_cut_by_an_outage_leaves_no_multipart_upload_once_s3_is_back(server, store):
    with pytest.raises(Unavailable) as caught:
        with store.writer(VIDEOS, "v.mp4", "video/mp4") as writer:
            writer.write(os.urandom(PART_SIZE))  # one part sent: a multipart upload is open
            assert pending(server, store) != []
            server.stop()
            writer.write(os.urandom(PART_SIZE))  # the next part finds nobody
    # the part in flight when the server went down: refused, or a 500 while it shut down
    assert caught.value.cause in ("S3 cannot be reached", "S3 answered 500")
    with pytest.raises(Unavailable):
        store.stat(VIDEOS, writer.fid)
    server.start()
    assert pending(server, store) != []  # the abort could not reach S3 then
    with store.writer(VIDEOS, "w.mp4", "video/mp4") as retried:  # a retry, as Celery's
        retried.write(b"retried")
    assert pending(server, store) == []
    assert store.stat(VIDEOS, writer.fid) is None
    with store.open(VIDEOS, retried.fid) as reader:
        assert reader.read() == b"retried"


def test_a_read_cut_by_an_outage_is_unavailable_not_a_short_file(server, store):
    data = os.urandom(48 * (1 << 20))  # more than the sockets hold in flight
    with store.writer(VIDEOS, "v.mp4", "video/mp4") as writer:
        for start in range(0, len(data), 1 << 20):
            writer.write(data[start : start + (1 << 20)])
    with pytest.raises(Unavailable):
        with store.open(VIDEOS, writer.fid) as reader:
            assert reader.read(1 << 20) == data[: 1 << 20]
            server.kill()
            while reader.read(1 << 20):  # what was buffered in flight, then the outage
                pass
    server.start()
    with pytest.raises(NotFound):
        store.open(VIDEOS, "0" * 32)
    with store.open(VIDEOS, writer.fid) as reader:
        assert reader.read() == data
