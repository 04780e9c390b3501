"""Partial uploads of the GridFS store: each PATCH body is one GridFS file (a segment) of the
`partials` bucket; finishing copies the segments, in order, into one file of the target bucket.

The copy costs one more read and write of the whole video inside MongoDB, once, during the
last PATCH (about as long as the upload's own writes; streamed 1 MiB at a time, never whole
in memory). Writing into the target bucket's chunks directly would avoid it, but needs
updates and partial deletes of GridFS chunks that the test server (nx-27017) does not do.
`partial_uploads` lists each upload's bucket, segments and last write, so appends, the
purge and orphan sweeps need no query on GridFS metadata.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from bson import ObjectId

from core.adapters.stores.blob_writer import CountingWriter
from core.adapters.stores.gridfs import GridFSBlobStore, object_id, translate_errors
from core.domain.errors import NotFound
from core.domain.files import Blob
from core.ports.uploads import PartialUploadStore

SEGMENTS = "partials"  # the GridFS bucket of segments; never a bucket of the blob store's users
STATE = "partial_uploads"
COPY_CHUNK = 1 << 20


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class GridFSPartialUploads(PartialUploadStore):
    def __init__(self, blob_store: GridFSBlobStore):
        self._blobs = blob_store

    def create(self, bucket: str) -> str:
        self._blobs._check_bucket(bucket)
        oid = ObjectId()
        with translate_errors():
            self._db()[STATE].insert_one(
                {"_id": oid, "bucket": bucket, "segments": [], "updated_at": _now()}
            )
        return str(oid)

    @contextmanager
    def appender(self, handle: str, offset: int) -> Iterator[CountingWriter]:
        oid, doc = self._find(handle)
        segments = self._cut(oid, doc["segments"], offset)
        with self._blobs.writer(
            SEGMENTS, handle, "application/octet-stream", {"upload": handle, "start": offset}
        ) as sink:
            try:
                yield sink
            except BaseException as exc:
                # Keep what arrived: let the segment close normally, then re-raise below.
                error: BaseException | None = exc
            else:
                error = None
        if sink.size:
            segments.append({"fid": sink.fid, "start": offset, "size": sink.size})
        else:
            self._blobs.delete(SEGMENTS, sink.fid)
        self._save(oid, segments)
        if error is not None:
            raise error

    def truncate(self, handle: str, size: int) -> None:
        oid, doc = self._find(handle)
        self._save(oid, self._cut(oid, doc["segments"], size))

    def size(self, handle: str) -> int | None:
        try:
            _, doc = self._find(handle)
        except NotFound:
            return None
        return sum(int(segment["size"]) for segment in doc["segments"])

    def finish(
        self, handle: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Blob:
        oid, doc = self._find(handle)
        with self._blobs.writer(doc["bucket"], filename, content_type, metadata) as target:
            for segment in doc["segments"]:
                with self._blobs.open(SEGMENTS, segment["fid"]) as source:
                    while chunk := source.read(COPY_CHUNK):
                        target.write(chunk)
        self.delete(handle)
        return Blob(
            fid=target.fid,
            size=target.size,
            content_type=content_type,
            filename=filename,
            metadata=dict(metadata or {}),
        )

    def delete(self, handle: str) -> bool:
        try:
            oid, doc = self._find(handle)
        except NotFound:
            return False
        for segment in doc["segments"]:
            self._blobs.delete(SEGMENTS, segment["fid"])
        with translate_errors():
            self._db()[STATE].delete_one({"_id": oid})
        return True

    def stale(self, older_than: datetime) -> list[str]:
        with translate_errors():
            docs = self._db()[STATE].find({"updated_at": {"$lt": older_than}}, {"_id": 1})
            return sorted(str(doc["_id"]) for doc in docs)

    # --- helpers ---------------------------------------------------------------------------

    def _db(self) -> Any:
        return self._blobs._database()  # the store's per-process client, never a second one

    def _find(self, handle: str) -> tuple[ObjectId, dict[str, Any]]:
        oid = object_id(handle)
        if oid is None:
            raise NotFound("upload not found")
        with translate_errors():
            doc = self._db()[STATE].find_one({"_id": oid})
        if doc is None:
            raise NotFound("upload not found")
        return oid, doc

    def _cut(
        self, oid: ObjectId, segments: list[dict[str, Any]], offset: int
    ) -> list[dict[str, Any]]:
        """Delete the segments at or past offset; the ones kept must end exactly there."""
        kept = [s for s in segments if s["start"] < offset]
        for segment in segments:
            if segment["start"] >= offset:
                self._blobs.delete(SEGMENTS, segment["fid"])
        end = kept[-1]["start"] + kept[-1]["size"] if kept else 0
        if end > offset:  # a segment spans the offset: keep its head in a new segment
            last = kept.pop()
            with (
                self._blobs.open(SEGMENTS, last["fid"]) as source,
                self._blobs.writer(
                    SEGMENTS,
                    str(oid),
                    "application/octet-stream",
                    {"upload": str(oid), "start": last["start"]},
                ) as head,
            ):
                left = offset - last["start"]
                while left and (chunk := source.read(min(COPY_CHUNK, left))):
                    head.write(chunk)
                    left -= len(chunk)
            kept.append({"fid": head.fid, "start": last["start"], "size": head.size})
            self._blobs.delete(SEGMENTS, last["fid"])
        elif end < offset:
            raise NotFound("the stored upload is shorter than its offset")
        if len(kept) != len(segments):
            self._save(oid, kept)
        return kept

    def _save(self, oid: ObjectId, segments: list[dict[str, Any]]) -> None:
        with translate_errors():
            self._db()[STATE].update_one(
                {"_id": oid}, {"$set": {"segments": segments, "updated_at": _now()}}
            )
