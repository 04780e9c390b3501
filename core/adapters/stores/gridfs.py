"""A BlobStore on MongoDB GridFS: one GridFS bucket per blob-store bucket."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import tempfile
import threading
from contextlib import contextmanager, suppress
from typing import Any, Callable, Iterator

import gridfs
from bson import ObjectId
from gridfs.errors import NoFile
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from core.adapters.stores.blob_writer import CountingWriter
from core.domain.errors import NotFound, Unavailable
from core.domain.files import Blob
from core.ports.files import BlobStore

Client = MongoClient[dict[str, Any]]
log = logging.getLogger(__name__)

SERVICE = "blob store"
COPY_CHUNK = 1 << 20
_CONNECTION_ERRORS = (ConnectionFailure, ServerSelectionTimeoutError, AutoReconnect)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def mongo_client_factory(
    uri: str, timeout: float = 3.0, socket_timeout: float = 30.0
) -> Callable[[], Client]:
    """A function building a MongoClient for uri that gives up on an unreachable server
    quickly (`timeout` s to select and connect) and on a silent one (`socket_timeout` s per
    read or write: the driver's default is to wait forever)."""

    def build() -> Client:
        return MongoClient(
            uri,
            serverSelectionTimeoutMS=int(timeout * 1000),
            connectTimeoutMS=int(timeout * 1000),
            socketTimeoutMS=int(socket_timeout * 1000),
            appname="vid2mp3",
        )

    return build


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn a lost or unreachable MongoDB into Unavailable."""
    try:
        yield
    except _CONNECTION_ERRORS as exc:
        raise Unavailable(SERVICE) from exc


def _guarded_write(upload: gridfs.GridIn) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        with translate_errors():
            upload.write(data)

    return write


class GridFSReader(io.BufferedIOBase):
    """A seekable binary reader over a GridOut that reports a lost server as Unavailable."""

    def __init__(self, grid_out: gridfs.GridOut):
        super().__init__()
        self._grid_out = grid_out

    @property
    def name(self) -> str | None:
        """The stored filename."""
        return self._grid_out.filename

    @property
    def length(self) -> int:
        """The file's size in bytes."""
        return int(self._grid_out.length)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to size bytes from the current position; all the rest when size is negative."""
        self._check_open()
        with translate_errors():
            return self._grid_out.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        with translate_errors():
            self._grid_out.seek(offset, whence)
        return self._grid_out.tell()

    def tell(self) -> int:
        self._check_open()
        return self._grid_out.tell()

    def close(self) -> None:
        if not self.closed:
            try:
                self._grid_out.close()
            finally:
                super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


class GridFSBlobStore(BlobStore):
    """Files in GridFS buckets of one database; the client is made lazily, once per process."""

    def __init__(self, client_factory: Callable[[], Client], database: str):
        self._client_factory = client_factory
        self._database_name = database
        self._client: Client | None = None
        self._client_pid: int | None = None
        self._lock = threading.Lock()

    @property
    def database_name(self) -> str:
        """The MongoDB database holding the buckets."""
        return self._database_name

    @contextmanager
    def writer(
        self, bucket: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Iterator[CountingWriter]:
        """Stream a new file into GridFS; on an exception the partial upload is removed."""
        grid_bucket = self._bucket(bucket)
        stored = {"content_type": content_type, "metadata": dict(metadata or {})}
        with translate_errors():
            upload = grid_bucket.open_upload_stream(filename, metadata=stored)
        blob_writer = CountingWriter(str(upload._id), _guarded_write(upload))
        try:
            yield blob_writer
            with translate_errors():
                upload.close()
        except BaseException:
            _abort(upload)
            raise

    def stat(self, bucket: str, fid: str) -> Blob | None:
        """The file's size and metadata, or None when there is no such file."""
        self._check_bucket(bucket)
        oid = object_id(fid)
        if oid is None:
            return None
        with translate_errors():
            doc = self._database()[f"{bucket}.files"].find_one({"_id": oid})
        if doc is None:
            return None
        stored = doc.get("metadata") or {}
        return Blob(
            fid=str(doc["_id"]),
            size=int(doc.get("length") or 0),
            content_type=(
                stored.get("content_type") or doc.get("contentType") or "application/octet-stream"
            ),
            filename=doc.get("filename"),
            metadata=dict(stored.get("metadata") or {}),
        )

    def open(self, bucket: str, fid: str) -> GridFSReader:  # type: ignore[override]
        """A seekable reader over the stored file; raises NotFound for an unknown id."""
        grid_bucket = self._bucket(bucket)
        oid = object_id(fid)
        if oid is None:
            raise NotFound("file not found", {"bucket": bucket})
        try:
            with translate_errors():
                return GridFSReader(grid_bucket.open_download_stream(oid))
        except NoFile:
            raise NotFound("file not found", {"bucket": bucket}) from None

    @contextmanager
    def local_path(self, bucket: str, fid: str, scratch_dir: str) -> Iterator[str]:
        """A copy of the file in scratch_dir, removed when the block ends however it ends."""
        path: str | None = None
        try:
            with self.open(bucket, fid) as source:
                # No user-chosen extension: a name must never steer ffmpeg's choice of demuxer.
                with tempfile.NamedTemporaryFile(
                    dir=scratch_dir, prefix="blob-", delete=False
                ) as target:
                    path = target.name
                    shutil.copyfileobj(source, target, COPY_CHUNK)
            yield path
        finally:
            if path is not None:
                with suppress(FileNotFoundError):
                    os.unlink(path)

    def delete(self, bucket: str, fid: str) -> bool:
        """Remove a file and its chunks; returns whether it existed."""
        grid_bucket = self._bucket(bucket)
        oid = object_id(fid)
        if oid is None:
            return False
        with translate_errors():
            # Look first: some servers answer a delete of a missing file with an error
            # instead of NoFile, and a missing file is not an error here.
            if self._database()[f"{bucket}.files"].find_one({"_id": oid}) is None:
                return False
            try:
                grid_bucket.delete(oid)
            except NoFile:
                return False
        return True

    def ping(self) -> None:
        """Raise Unavailable when MongoDB cannot be reached or refuses to answer."""
        try:
            self._mongo().admin.command("ping")
        except PyMongoError as exc:
            raise Unavailable(SERVICE) from exc

    def close(self) -> None:
        """Close this process's client, if one was made; the next use makes a new one."""
        with self._lock:
            client, pid = self._client, self._client_pid
            self._client = self._client_pid = None
        if client is not None and pid == os.getpid():
            client.close()

    # --- connection ------------------------------------------------------------------------

    def _mongo(self) -> Client:
        """This process's client: a client inherited across fork is never reused."""
        pid = os.getpid()
        client = self._client
        if client is None or self._client_pid != pid:
            with self._lock:
                if self._client is None or self._client_pid != pid:
                    self._client = self._client_factory()
                    self._client_pid = pid
                client = self._client
        return client

    def _database(self) -> Database[Any]:
        return self._mongo()[self._database_name]

    def _bucket(self, bucket: str) -> gridfs.GridFSBucket:
        self._check_bucket(bucket)
        return gridfs.GridFSBucket(self._database(), bucket_name=bucket)

    @staticmethod
    def _check_bucket(bucket: str) -> None:
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise ValueError(f"invalid bucket name: {bucket!r}")


def object_id(fid: str) -> ObjectId | None:
    """The ObjectId spelled by fid, or None when fid is not 24 hex digits."""
    if not isinstance(fid, str) or not ObjectId.is_valid(fid):
        return None
    return ObjectId(fid)


def _abort(upload: gridfs.GridIn) -> None:
    """Remove whatever part of an upload reached the server, without masking the first error."""
    try:
        upload.abort()
    except PyMongoError as exc:
        # nx-27017 answers the delete of a never-flushed files document with an error, and
        # a lost server cannot be cleaned up now; either way the caller's error matters more.
        log.warning("could not abort GridFS upload %s: %s", upload._id, exc)
