"""The partial-upload stores against a real directory and a real GridFS server (nx-27017),
and the Redis upload state: appends at offsets, dropped bodies, finishing without a copy."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from pymongo import MongoClient

from core.adapters.redis.client import redis_client
from core.adapters.redis.uploads import RedisUploadRepository
from core.adapters.stores.directory import DirectoryBlobStore
from core.adapters.stores.directory_partial import DirectoryPartialUploads
from core.adapters.stores.gridfs import GridFSBlobStore, mongo_client_factory
from core.adapters.stores.gridfs_partial import GridFSPartialUploads
from core.adapters.stores.s3 import S3BlobStore, S3Location
from core.adapters.stores.s3_partial import S3PartialUploads
from core.domain.errors import NotFound
from core.domain.jobs import Upload
from core.ports.files import BlobStore
from core.ports.uploads import PartialUploadStore
from tests.support.mongo import running_mongo

VIDEOS = "videos"
CHUNK_SIZE = 255 * 1024  # GridFS's chunk size: pieces that straddle it


class Dropped(Exception):
    """The client went away mid-body."""


@pytest.fixture(scope="module")
def mongo_uri() -> Iterator[str]:
    with running_mongo() as uri:
        yield uri


@pytest.fixture(params=["directory", "gridfs", "s3"])
def stores(request, tmp_path) -> Iterator[tuple[PartialUploadStore, BlobStore]]:
    if request.param == "directory":
        blobs = DirectoryBlobStore(str(tmp_path / "blobs"))
        yield DirectoryPartialUploads(blobs), blobs
        return
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        location = S3Location(
            bucket=request.getfixturevalue("s3_bucket"),
            prefix="run/",
            endpoint_url=server.endpoint_url,
            region=server.region,
        )
        s3_blobs = S3BlobStore(server.client, location)
        yield S3PartialUploads(s3_blobs), s3_blobs
        return
    uri = request.getfixturevalue("mongo_uri")
    blobs = GridFSBlobStore(mongo_client_factory(uri), f"vid2mp3_test_{uuid.uuid4().hex}")
    try:
        yield GridFSPartialUploads(blobs), blobs
    finally:
        blobs.close()
        with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(blobs.database_name)


def append(
    store: PartialUploadStore, handle: str, offset: int, data: bytes, piece: int = 100_000
) -> int:
    with store.appender(handle, offset) as sink:
        for start in range(0, len(data), piece):
            sink.write(data[start : start + piece])
    return sink.size


def test_appends_in_pieces_finish_as_an_ordinary_blob(stores):
    store, blobs = stores
    data = os.urandom(3 * CHUNK_SIZE + 12_345)
    handle = store.create(VIDEOS)
    assert store.size(handle) == 0
    offset = 0
    for size in (1000, CHUNK_SIZE - 1000 + 7, 2 * CHUNK_SIZE, len(data)):  # odd boundaries
        offset += append(store, handle, offset, data[offset:size])
        assert store.size(handle) == offset == size
    assert blobs.stat(VIDEOS, handle) is None  # invisible until finished

    blob = store.finish(handle, "clip.mp4", "application/octet-stream", {"owner_id": 3})
    assert blob.size == len(data)
    stat = blobs.stat(VIDEOS, blob.fid)
    assert stat.size == len(data) and stat.filename == "clip.mp4"
    assert stat.metadata == {"owner_id": 3}
    with blobs.open(VIDEOS, blob.fid) as fh:
        assert fh.read() == data
    assert store.size(handle) is None and store.delete(handle) is False
    assert blobs.delete(VIDEOS, blob.fid)


def test_a_dropped_body_keeps_what_arrived(stores):
    store, blobs = stores
    data = os.urandom(CHUNK_SIZE + 500)
    handle = store.create(VIDEOS)
    with pytest.raises(Dropped):
        with store.appender(handle, 0) as sink:
            sink.write(data[: CHUNK_SIZE + 100])
            raise Dropped()
    assert sink.size == store.size(handle) == CHUNK_SIZE + 100
    append(store, handle, CHUNK_SIZE + 100, data[CHUNK_SIZE + 100 :])
    blob = store.finish(handle, "a.mp4", "video/mp4")
    with blobs.open(VIDEOS, blob.fid) as fh:
        assert fh.read() == data


def test_appending_at_an_offset_drops_what_lies_beyond(stores):
    """Bytes stored but never recorded (a process killed before it saved the offset)."""
    store, blobs = stores
    handle = store.create(VIDEOS)
    append(store, handle, 0, b"a" * (CHUNK_SIZE + 50))
    append(store, handle, 10, b"b" * 20)
    assert store.size(handle) == 30
    store.truncate(handle, 15)
    assert store.size(handle) == 15
    append(store, handle, 15, b"c")
    with pytest.raises(NotFound):  # never past what is stored
        append(store, handle, 17, b"d")
    blob = store.finish(handle, "a.bin", "application/octet-stream")
    with blobs.open(VIDEOS, blob.fid) as fh:
        assert fh.read() == b"a" * 10 + b"b" * 5 + b"c"


def test_delete_and_stale(stores):
    store, blobs = stores
    old, new = store.create(VIDEOS), store.create(VIDEOS)
    append(store, old, 0, b"x" * 1000)
    future = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=1)
    past = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=1)
    assert set(store.stale(future)) == {old, new}
    assert store.stale(past) == []
    assert store.delete(old) is True and store.delete(old) is False
    assert store.size(old) is None and store.stale(future) == [new]
    with pytest.raises(NotFound):
        with store.appender(old, 0):
            pass
    for bad in ("", "../etc", "0" * 5):
        assert store.size(bad) is None and store.delete(bad) is False


def test_directory_finish_renames_without_a_copy(tmp_path):
    blobs = DirectoryBlobStore(str(tmp_path / "blobs"))
    store = DirectoryPartialUploads(blobs)
    handle = store.create(VIDEOS)
    append(store, handle, 0, b"v" * 5000)
    inode = os.stat(os.path.join(blobs.root, ".partial", handle)).st_ino
    store.finish(handle, "a.mp4", "video/mp4")
    assert os.stat(os.path.join(blobs.root, VIDEOS, handle)).st_ino == inode
    assert os.listdir(os.path.join(blobs.root, ".partial")) == []


def test_gridfs_leaves_no_segments_behind(request):
    uri = request.getfixturevalue("mongo_uri")
    blobs = GridFSBlobStore(mongo_client_factory(uri), f"vid2mp3_test_{uuid.uuid4().hex}")
    store = GridFSPartialUploads(blobs)
    try:
        finished, dropped = store.create(VIDEOS), store.create(VIDEOS)
        for handle in (finished, dropped):
            append(store, handle, 0, b"v" * 5000)
            append(store, handle, 5000, b"w" * 5000)
        store.truncate(finished, 7000)
        blob = store.finish(finished, "a.mp4", "video/mp4")
        store.delete(dropped)
        with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
            db = client[blobs.database_name]
            assert list(db["partials.files"].find({})) == []
            assert list(db["partial_uploads"].find({})) == []
            assert [str(d["_id"]) for d in db["videos.files"].find({})] == [blob.fid]
        with blobs.open(VIDEOS, blob.fid) as fh:
            assert fh.read() == b"v" * 5000 + b"w" * 2000
    finally:
        blobs.close()
        with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(blobs.database_name)


# --- the state in Redis -----------------------------------------------------------------


@pytest.fixture
def repo(settings):
    client = redis_client(settings.redis_url)
    prefix = f"{settings.redis_prefix}uploads-{uuid.uuid4().hex[:6]}:"
    yield RedisUploadRepository(client, prefix)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def test_redis_state_round_trip_and_expiry_index(repo):
    now = time.time()
    upload = Upload(
        id=uuid.uuid4().hex,
        owner_id=7,
        length=100,
        offset=0,
        handle="h" * 32,
        filename="a b.mp4",
        options={"bitrate": "128k"},
        expires_at=now + 60,
    )
    repo.add(upload)
    assert repo.get(upload.id) == upload
    repo.update(upload.id, {"offset": 40, "expires_at": now + 120})
    assert repo.get(upload.id) == replace(upload, offset=40, expires_at=now + 120)
    assert repo.expired(now + 119) == [] and repo.expired(now + 121) == [upload.id]
    repo.update(upload.id, {"job_id": "j" * 32})
    assert repo.get(upload.id).job_id == "j" * 32
    assert repo.delete(upload.id) and repo.get(upload.id) is None
    assert repo.expired(now + 1000) == []


def test_redis_lease_is_exclusive_and_released(repo):
    with repo.lock("u1", 5) as first:
        assert first is not None and first.renew()
        with repo.lock("u1", 5) as second:
            assert second is None
        with repo.lock("u2", 5) as other:
            assert other is not None
    with repo.lock("u1", 5) as again:
        assert again is not None
