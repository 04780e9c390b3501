"""Partial uploads of the GridFS store, written straight into the bucket's chunks collection.

An upload's chunks are ordinary GridFS chunks (`files_id`, `n`, `data`) of a file whose
`files` document does not exist yet, so no reader sees them; only the last chunk may be
short, and the next append rewrites it. Finishing inserts the `files` document: the bytes
are never copied. `partial_uploads` records each unfinished one (bucket, last write) so
the purge can find uploads whose state was lost.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from bson import Binary, ObjectId

from core.adapters.gridfs_store import GridFSBlobStore, _object_id, _translate_errors
from core.domain import Blob, NotFound

from core.ports import PartialUploadStore

CHUNK_SIZE = 255 * 1024  # GridFS's default chunk size
PARTIALS = "partial_uploads"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class _ChunkAppender:
    """Buffers at most one chunk: full chunks are written as they fill, the tail on close."""

    def __init__(self, chunks: Any, oid: ObjectId, offset: int, head: bytes):
        self._chunks = chunks
        self._oid = oid
        self._n = offset // CHUNK_SIZE
        self._buffer = bytearray(head)
        self._start = offset
        self.size = 0  # bytes past offset that are stored

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= CHUNK_SIZE:
            self._put(bytes(self._buffer[:CHUNK_SIZE]))
            del self._buffer[:CHUNK_SIZE]
            self._n += 1
            self.size = self._n * CHUNK_SIZE - self._start
        return len(data)

    def close(self) -> None:
        if self._buffer:
            self._put(bytes(self._buffer))
            self.size = self._n * CHUNK_SIZE + len(self._buffer) - self._start

    def _put(self, data: bytes) -> None:
        with _translate_errors():
            self._chunks.replace_one({"files_id": self._oid, "n": self._n},
                                     {"files_id": self._oid, "n": self._n, "data": Binary(data)},
                                     upsert=True)


class GridFSPartialUploads(PartialUploadStore):
    def __init__(self, blob_store: GridFSBlobStore):
        self._blobs = blob_store

    def create(self, bucket: str) -> str:
        self._blobs._check_bucket(bucket)
        oid = ObjectId()
        with _translate_errors():
            self._db()[PARTIALS].insert_one({"_id": oid, "bucket": bucket, "updated_at": _now()})
        return str(oid)

    @contextmanager
    def appender(self, handle: str, offset: int) -> Iterator[_ChunkAppender]:
        oid, bucket = self._find(handle)
        chunks = self._db()[f"{bucket}.chunks"]
        head = self._cut(chunks, oid, offset)
        writer = _ChunkAppender(chunks, oid, offset, head)
        try:
            yield writer
        finally:  # keep what arrived, whatever ended the block
            writer.close()
            with _translate_errors():
                self._db()[PARTIALS].update_one({"_id": oid}, {"$set": {"updated_at": _now()}})

    def truncate(self, handle: str, size: int) -> None:
        oid, bucket = self._find(handle)
        chunks = self._db()[f"{bucket}.chunks"]
        head = self._cut(chunks, oid, size)
        if head:
            _ChunkAppender(chunks, oid, size - len(head), head).close()

    def size(self, handle: str) -> int | None:
        try:
            oid, bucket = self._find(handle)
        except NotFound:
            return None
        with _translate_errors():
            last = self._db()[f"{bucket}.chunks"].find_one({"files_id": oid}, sort=[("n", -1)])
        return 0 if last is None else last["n"] * CHUNK_SIZE + len(last["data"])

    def finish(self, handle: str, filename: str, content_type: str,
               metadata: dict[str, Any] | None = None) -> Blob:
        oid, bucket = self._find(handle)
        size = self.size(handle) or 0
        extra = dict(metadata or {})
        with _translate_errors():
            self._db()[f"{bucket}.files"].insert_one({
                "_id": oid, "length": size, "chunkSize": CHUNK_SIZE, "uploadDate": _now(),
                "filename": filename,
                "metadata": {"content_type": content_type, "metadata": extra}})
            self._db()[PARTIALS].delete_one({"_id": oid})
        return Blob(fid=handle, size=size, content_type=content_type, filename=filename,
                    metadata=extra)

    def delete(self, handle: str) -> bool:
        try:
            oid, bucket = self._find(handle)
        except NotFound:
            return False
        with _translate_errors():
            self._db()[f"{bucket}.chunks"].delete_many({"files_id": oid})
            self._db()[PARTIALS].delete_one({"_id": oid})
        return True

    def stale(self, older_than: datetime) -> list[str]:
        with _translate_errors():
            docs = self._db()[PARTIALS].find({"updated_at": {"$lt": older_than}}, {"_id": 1})
            return sorted(str(doc["_id"]) for doc in docs)

    # --- helpers ---------------------------------------------------------------------------

    def _db(self) -> Any:
        return self._blobs._database()  # the store's per-process client, never a second one

    def _find(self, handle: str) -> tuple[ObjectId, str]:
        oid = _object_id(handle)
        if oid is None:
            raise NotFound("upload not found")
        with _translate_errors():
            doc = self._db()[PARTIALS].find_one({"_id": oid})
        if doc is None:
            raise NotFound("upload not found")
        return oid, str(doc["bucket"])

    @staticmethod
    def _cut(chunks: Any, oid: ObjectId, offset: int) -> bytes:
        """Drop the bytes at and past offset; returns the kept head of the chunk offset is in."""
        n, within = divmod(offset, CHUNK_SIZE)
        with _translate_errors():
            chunks.delete_many({"files_id": oid, "n": {"$gt": n}})
            if within == 0:
                chunks.delete_many({"files_id": oid, "n": n})
                return b""
            doc = chunks.find_one({"files_id": oid, "n": n})
        data = bytes(doc["data"]) if doc else b""
        if len(data) < within:
            raise NotFound("the stored upload is shorter than its offset")
        return data[:within]
