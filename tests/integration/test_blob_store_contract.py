"""One contract for every BlobStore adapter, run against a directory, a real GridFS server and a
real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from typing import Callable, Iterator

import pytest
from pymongo import MongoClient

from core.adapters.stores.directory import DirectoryBlobStore
from core.adapters.stores.gridfs import GridFSBlobStore, mongo_client_factory
from core.adapters.stores.s3 import S3BlobStore, S3Location
from core.domain.errors import NotFound, Unavailable
from core.ports.files import BlobStore
from devtools.processes import free_port
from tests.support.mongo import running_mongo
from tests.support.s3 import S3Server
from tests.support.wait import wait_for

MiB = 1 << 20
VIDEOS, MP3S = "videos", "mp3s"
UNKNOWN_IDS = {
    "directory": uuid.uuid4().hex,
    "gridfs": "0123456789abcdef01234567",
    "s3": uuid.uuid4().hex,
}
MALFORMED_IDS = [
    "",
    "nope",
    "../x",
    "../../etc/passwd",
    "zz" * 12,
    "0" * 23,
    "0" * 33,
    "0123456789abcdef01234567\n",
    "a/b",
    ".",
]


class Boom(Exception):
    """Raised inside blocks to check what the store leaves behind."""


@pytest.fixture(scope="module")
def mongo_uri() -> Iterator[str]:
    with running_mongo() as uri:
        yield uri


def s3_store(server: S3Server, bucket: str, prefix: str = "run/") -> S3BlobStore:
    location = S3Location(
        bucket=bucket, prefix=prefix, endpoint_url=server.endpoint_url, region=server.region
    )
    return S3BlobStore(server.client, location)


@pytest.fixture(params=["directory", "gridfs", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[BlobStore]:
    if request.param == "directory":
        yield DirectoryBlobStore(str(tmp_path / "blobs"))
        return
    if request.param == "s3":
        yield s3_store(request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket"))
        return
    uri = request.getfixturevalue("mongo_uri")
    store = GridFSBlobStore(mongo_client_factory(uri), f"vid2mp3_test_{uuid.uuid4().hex}")
    try:
        yield store
    finally:
        store.close()
        with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(store.database_name)


@pytest.fixture
def stored_names(
    blob_store: BlobStore, request: pytest.FixtureRequest
) -> Callable[[str], list[str]]:
    """Everything a bucket physically holds: file names on disk, GridFS file ids, or S3 keys
    and unfinished multipart uploads."""

    def names(bucket: str) -> list[str]:
        if isinstance(blob_store, S3BlobStore):
            s3 = request.getfixturevalue("s3_server").client()
            where = {"Bucket": blob_store.s3_bucket, "Prefix": blob_store.key(bucket, "")}
            keys = [o["Key"] for o in s3.list_objects_v2(**where).get("Contents", [])]
            pending = [u["Key"] for u in s3.list_multipart_uploads(**where).get("Uploads", [])]
            return sorted(keys + [f"unfinished:{key}" for key in pending])
        if isinstance(blob_store, DirectoryBlobStore):
            directory = os.path.join(blob_store.root, bucket)
            return sorted(os.listdir(directory)) if os.path.isdir(directory) else []
        assert isinstance(blob_store, GridFSBlobStore)
        with MongoClient(
            request.getfixturevalue("mongo_uri"), serverSelectionTimeoutMS=3000
        ) as client:
            files = client[blob_store.database_name][f"{bucket}.files"]
            return sorted(str(doc["_id"]) for doc in files.find({}))

    return names


@pytest.fixture
def unknown_id(request: pytest.FixtureRequest, blob_store: BlobStore) -> str:
    return UNKNOWN_IDS[request.node.callspec.params["blob_store"]]


def put(
    store: BlobStore,
    data: bytes,
    bucket: str = VIDEOS,
    filename: str = "clip.mp4",
    content_type: str = "video/mp4",
    metadata: dict | None = None,
    chunk: int = 64 * 1024,
) -> str:
    with store.writer(bucket, filename, content_type, metadata) as writer:
        for start in range(0, len(data), chunk):
            writer.write(data[start : start + chunk])
    return writer.fid


def sample(size: int) -> bytes:
    return os.urandom(size)


# --- writing and reading back ----------------------------------------------------------


def test_round_trip_keeps_bytes_and_metadata(blob_store: BlobStore):
    data = sample(300_000)
    fid = put(
        blob_store,
        data,
        filename="holiday.mov",
        content_type="video/quicktime",
        metadata={"owner_id": 7, "job_id": "abc", "tags": ["a", "b"]},
    )

    blob = blob_store.stat(VIDEOS, fid)
    assert blob is not None
    assert blob.fid == fid
    assert blob.size == len(data)
    assert blob.filename == "holiday.mov"
    assert blob.content_type == "video/quicktime"
    assert blob.metadata == {"owner_id": 7, "job_id": "abc", "tags": ["a", "b"]}
    with blob_store.open(VIDEOS, fid) as fh:
        assert fh.read() == data


def test_writer_reports_id_and_size_while_writing(blob_store: BlobStore):
    with blob_store.writer(VIDEOS, "a.mp4", "video/mp4") as writer:
        fid_while_writing = writer.fid
        assert writer.write(b"x" * 1000) == 1000
        assert writer.write(b"y" * 24) == 24
        assert writer.size == 1024
    assert writer.fid == fid_while_writing
    assert blob_store.stat(VIDEOS, writer.fid).size == 1024


def test_empty_file(blob_store: BlobStore):
    fid = put(blob_store, b"")
    assert blob_store.stat(VIDEOS, fid).size == 0
    with blob_store.open(VIDEOS, fid) as fh:
        assert fh.read() == b""


def test_metadata_defaults_to_empty(blob_store: BlobStore):
    fid = put(blob_store, b"abc", metadata=None)
    assert blob_store.stat(VIDEOS, fid).metadata == {}


def test_streams_a_multi_megabyte_file_in_chunks(blob_store: BlobStore):
    data = sample(12 * MiB + 12345)
    fid = put(blob_store, data, chunk=MiB - 7)

    digest = hashlib.sha256()
    total = 0
    with blob_store.open(VIDEOS, fid) as fh:
        while chunk := fh.read(MiB):
            assert len(chunk) <= MiB
            digest.update(chunk)
            total += len(chunk)
    assert total == len(data)
    assert digest.digest() == hashlib.sha256(data).digest()
    assert blob_store.stat(VIDEOS, fid).size == len(data)


def test_seek_and_partial_reads(blob_store: BlobStore):
    data = sample(3 * MiB + 17)
    fid = put(blob_store, data)
    with blob_store.open(VIDEOS, fid) as fh:
        assert fh.seekable()
        # A byte range across a GridFS chunk boundary (255 KiB), as an HTTP Range asks for.
        fh.seek(261_000)
        assert fh.read(500) == data[261_000:261_500]
        assert fh.tell() == 261_500
        fh.seek(2 * MiB)
        assert fh.read(10) == data[2 * MiB : 2 * MiB + 10]
        fh.seek(5)  # backwards
        assert fh.read(3) == data[5:8]
        fh.seek(100, io.SEEK_CUR)
        assert fh.read(4) == data[108:112]
        fh.seek(-10, io.SEEK_END)
        assert fh.read() == data[-10:]
        assert fh.read(1) == b""
        fh.seek(len(data) + 100)
        assert fh.read(10) == b""


def test_reader_supports_readinto(blob_store: BlobStore):
    data = sample(100_000)
    fid = put(blob_store, data)
    buffer = bytearray(4096)
    with blob_store.open(VIDEOS, fid) as fh:
        fh.seek(50_000)
        assert fh.readinto(buffer) == 4096
    assert bytes(buffer) == data[50_000:54_096]


def test_reader_is_closed_after_block(blob_store: BlobStore):
    fid = put(blob_store, b"abc")
    with blob_store.open(VIDEOS, fid) as fh:
        pass
    assert fh.closed


# --- failures leave nothing ---------------------------------------------------------------


def test_exception_inside_writer_leaves_nothing(blob_store: BlobStore, stored_names):
    keep = put(blob_store, b"keep me")
    before = stored_names(VIDEOS)
    with pytest.raises(Boom):
        with blob_store.writer(VIDEOS, "broken.mp4", "video/mp4", {"k": 1}) as writer:
            writer.write(sample(700_000))
            writer.write(sample(700_000))
            raise Boom()
    assert blob_store.stat(VIDEOS, writer.fid) is None
    with pytest.raises(NotFound):
        blob_store.open(VIDEOS, writer.fid)
    assert stored_names(VIDEOS) == before
    assert blob_store.stat(VIDEOS, keep).size == 7


def test_file_is_invisible_until_writer_exits(blob_store: BlobStore):
    with blob_store.writer(VIDEOS, "a.mp4", "video/mp4") as writer:
        writer.write(sample(600_000))
        assert blob_store.stat(VIDEOS, writer.fid) is None
        with pytest.raises(NotFound):
            blob_store.open(VIDEOS, writer.fid)
    assert blob_store.stat(VIDEOS, writer.fid).size == 600_000


def test_directory_store_leaves_no_temp_files(tmp_path):
    store = DirectoryBlobStore(str(tmp_path / "blobs"))
    fid = put(store, b"data")
    assert sorted(os.listdir(tmp_path / "blobs" / VIDEOS)) == [fid, fid + ".json"]
    with pytest.raises(Boom):
        with store.writer(VIDEOS, "x.mp4", "video/mp4") as writer:
            writer.write(b"partial")
            assert len(os.listdir(tmp_path / "blobs" / VIDEOS)) == 3  # the temp file
            raise Boom()
    assert sorted(os.listdir(tmp_path / "blobs" / VIDEOS)) == [fid, fid + ".json"]


# --- unknown, malformed and deleted ids ----------------------------------------------------


def test_unknown_id(blob_store: BlobStore, unknown_id: str, tmp_path):
    assert blob_store.stat(VIDEOS, unknown_id) is None
    assert blob_store.delete(VIDEOS, unknown_id) is False
    with pytest.raises(NotFound):
        blob_store.open(VIDEOS, unknown_id)
    with pytest.raises(NotFound):
        with blob_store.local_path(VIDEOS, unknown_id, str(tmp_path)):
            pass


@pytest.mark.parametrize("fid", MALFORMED_IDS)
def test_malformed_id(blob_store: BlobStore, fid: str, tmp_path):
    put(blob_store, b"something")
    assert blob_store.stat(VIDEOS, fid) is None
    assert blob_store.delete(VIDEOS, fid) is False
    with pytest.raises(NotFound):
        blob_store.open(VIDEOS, fid)
    with pytest.raises(NotFound):
        with blob_store.local_path(VIDEOS, fid, str(tmp_path)):
            pass


def test_delete_removes(blob_store: BlobStore, stored_names):
    fid = put(blob_store, sample(400_000))
    other = put(blob_store, b"other")
    assert blob_store.delete(VIDEOS, fid) is True
    assert blob_store.stat(VIDEOS, fid) is None
    with pytest.raises(NotFound):
        blob_store.open(VIDEOS, fid)
    assert blob_store.delete(VIDEOS, fid) is False
    assert blob_store.stat(VIDEOS, other).size == 5
    assert fid not in " ".join(stored_names(VIDEOS))


def test_buckets_are_separate(blob_store: BlobStore):
    video = put(blob_store, b"video bytes", bucket=VIDEOS)
    mp3 = put(blob_store, b"mp3 bytes", bucket=MP3S, filename="clip.mp3", content_type="audio/mpeg")
    assert blob_store.stat(MP3S, video) is None
    assert blob_store.stat(VIDEOS, mp3) is None
    with pytest.raises(NotFound):
        blob_store.open(MP3S, video)
    assert blob_store.delete(MP3S, video) is False
    assert blob_store.stat(VIDEOS, video).size == len(b"video bytes")
    with blob_store.open(MP3S, mp3) as fh:
        assert fh.read() == b"mp3 bytes"


def test_directory_store_rejects_path_traversal(tmp_path):
    root = tmp_path / "blobs"
    store = DirectoryBlobStore(str(root))
    put(store, b"inside")
    outside = tmp_path / "secret"
    outside.write_bytes(b"do not touch")
    (tmp_path / "secret.json").write_text('{"size": 12}')
    for fid in ("../../secret", "../secret", "..", "/etc/passwd", str(outside)):
        assert store.stat(VIDEOS, fid) is None
        assert store.delete(VIDEOS, fid) is False
        with pytest.raises(NotFound):
            store.open(VIDEOS, fid)
    assert outside.read_bytes() == b"do not touch"
    with pytest.raises(ValueError):
        store.stat("../videos", uuid.uuid4().hex)


# --- local paths --------------------------------------------------------------------------


def test_local_path_holds_identical_bytes(blob_store: BlobStore, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    data = sample(2 * MiB + 3)
    fid = put(blob_store, data, filename="movie.mkv")
    with blob_store.local_path(VIDEOS, fid, str(scratch)) as path:
        assert os.path.isfile(path)
        with open(path, "rb") as fh:
            assert fh.read() == data
        copied = path.startswith(str(scratch))
    assert os.listdir(scratch) == []
    if copied:
        assert not os.path.exists(path)
    else:  # the store's own file, still there
        assert os.path.exists(path)


def test_local_path_is_cleaned_up_when_block_raises(blob_store: BlobStore, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    fid = put(blob_store, sample(500_000))
    with pytest.raises(Boom):
        with blob_store.local_path(VIDEOS, fid, str(scratch)) as path:
            assert os.path.isfile(path)
            raise Boom()
    assert os.listdir(scratch) == []
    assert blob_store.stat(VIDEOS, fid) is not None


def test_gridfs_local_path_is_a_temp_copy(mongo_uri: str, tmp_path):
    store = GridFSBlobStore(mongo_client_factory(mongo_uri), f"vid2mp3_test_{uuid.uuid4().hex}")
    try:
        fid = put(store, b"\x00\x01" * 1000, filename="playlist.m3u8")
        with store.local_path(VIDEOS, fid, str(tmp_path)) as path:
            assert os.path.dirname(path) == str(tmp_path)
            # The user's extension would steer ffmpeg's choice of demuxer: it is dropped.
            assert os.path.splitext(path)[1] == "" and "m3u8" not in path
            os.unlink(path)  # whoever used the copy may remove it; the exit must not fail
        assert os.listdir(tmp_path) == []
    finally:
        with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(store.database_name)
        store.close()


# --- health -------------------------------------------------------------------------------


def test_ping_succeeds_and_leaves_nothing_behind(blob_store: BlobStore, stored_names):
    assert blob_store.ping() is None
    blob_store.ping()
    assert stored_names(VIDEOS) == [] and stored_names(MP3S) == []
    if isinstance(blob_store, DirectoryBlobStore):
        assert os.listdir(blob_store.root) == []  # the probe file is gone
    fid = put(blob_store, b"after a ping")  # and the store still works
    with blob_store.open(VIDEOS, fid) as reader:
        assert reader.read() == b"after a ping"


def test_directory_store_ping_fails_when_root_is_a_file(tmp_path):
    root = tmp_path / "not-a-dir"
    root.write_bytes(b"")
    with pytest.raises(Unavailable) as caught:
        DirectoryBlobStore(str(root)).ping()
    assert caught.value.service == "blob store"


def test_directory_store_does_no_io_at_construction(tmp_path):
    DirectoryBlobStore(str(tmp_path / "later"))
    assert not (tmp_path / "later").exists()


def test_gridfs_store_reports_unreachable_server_as_unavailable(tmp_path):
    created = []

    def factory() -> MongoClient:
        client = mongo_client_factory(f"mongodb://127.0.0.1:{free_port()}/", timeout=0.2)()
        created.append(client)
        return client

    store = GridFSBlobStore(factory, "vid2mp3_test_unreachable")
    assert created == []  # no client until first use
    try:
        for attempt in (
            store.ping,
            lambda: store.stat(VIDEOS, "0123456789abcdef01234567"),
            lambda: store.open(VIDEOS, "0123456789abcdef01234567"),
            lambda: store.delete(VIDEOS, "0123456789abcdef01234567"),
        ):
            with pytest.raises(Unavailable) as caught:
                attempt()
            assert caught.value.service == "blob store"
        with pytest.raises(Unavailable):
            with store.local_path(VIDEOS, "0123456789abcdef01234567", str(tmp_path)):
                pass
        with pytest.raises(Unavailable):
            with store.writer(VIDEOS, "a.mp4", "video/mp4") as writer:
                writer.write(b"abc")
        assert os.listdir(tmp_path) == []
        assert len(created) == 1  # one client, reused
    finally:
        store.close()


def test_gridfs_store_makes_a_new_client_after_fork(mongo_uri: str):
    created: list[MongoClient] = []

    def factory() -> MongoClient:
        client = mongo_client_factory(mongo_uri)()
        created.append(client)
        return client

    store = GridFSBlobStore(factory, f"vid2mp3_test_{uuid.uuid4().hex}")
    try:
        with store.writer(VIDEOS, "a.mp4", "video/mp4") as writer:
            writer.write(b"parent")
        store.ping()
        assert len(created) == 1
        answer = _in_forked_child(lambda: _child_reads(store, created, writer.fid))
        assert answer == "own client, read 6 bytes"
        assert len(created) == 1  # the parent keeps its client, and it still works
        assert store.stat(VIDEOS, writer.fid).size == 6
    finally:
        store.close()
        with MongoClient(mongo_uri, serverSelectionTimeoutMS=3000) as client:
            client.drop_database(store.database_name)


def _child_reads(store: GridFSBlobStore, created: list[MongoClient], fid: str) -> str:
    """In a forked child: read a blob; say whether it took a client of its own to do so."""
    import warnings

    inherited = created[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pymongo warns when a client crosses a fork
        with store.open(VIDEOS, fid) as reader:
            data = reader.read()
    own = len(created) == 2 and created[1] is not inherited
    return f"{'own' if own else 'inherited'} client, read {len(data)} bytes"


def _in_forked_child(work: Callable[[], str], timeout: float = 30) -> str:
    """Run work in a child made by a real os.fork(); its answer, or its error, as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe and leave without running pytest's exit
        code = 0
        try:
            os.write(write_end, work().encode())
        except BaseException as exc:  # noqa: BLE001  the parent reports it
            os.write(write_end, f"child failed: {exc!r}".encode()[:4000])
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        wait_for(
            lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, timeout=timeout, what="the forked child"
        )
    except AssertionError:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    finally:
        with os.fdopen(read_end, "rb") as pipe:
            answer = pipe.read().decode(errors="replace")
    return answer
