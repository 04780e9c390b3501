"""Partial (tus) uploads of the S3 store: S3 objects cannot be appended to, so each PATCH body
becomes one segment object, `<prefix>partials/<handle>/s<start>-<random>`, beside a marker
`<prefix>partials/<handle>/bucket` naming the bucket the upload will join.

Finishing makes one object of the segments: by server-side multipart copy (UploadPartCopy, no
byte passes through this process) when every segment but the last is at least S3's smallest
part (5 MiB), else by streaming them, 1 MiB at a time, into a multipart upload. The listing of
the handle's prefix is the whole state: no database is needed, and a lifecycle rule on
`<prefix>partials/` can expire what a lost process left.
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any, Iterator

from core.adapters.stores.blob_writer import CountingWriter
from core.adapters.stores.s3 import (
    META_KEY,
    S3BlobStore,
    encode_record,
    translate_errors,
)
from core.domain.errors import NotFound
from core.domain.files import Blob
from core.ports.uploads import PartialUploadStore

PARTIALS = "partials/"  # never a bucket of the blob store: those are its buckets' names
MARKER = "bucket"
MIN_PART = 5 << 20
MAX_COPY_PART = 1 << 30
COPY_CHUNK = 1 << 20
_HANDLE = re.compile(r"[0-9a-f]{32}")
_SEGMENT = re.compile(r"s(\d{20})-[0-9a-f]{8}")


class S3PartialUploads(PartialUploadStore):
    def __init__(self, blob_store: S3BlobStore):
        self._blobs = blob_store
        self._root = blob_store.location.prefix + PARTIALS

    def create(self, bucket: str) -> str:
        self._blobs._check_bucket(bucket)
        handle = uuid.uuid4().hex
        with translate_errors():
            self._s3().put_object(
                Bucket=self._bucket, Key=self._dir(handle) + MARKER, Body=bucket.encode()
            )
        return handle

    @contextmanager
    def appender(self, handle: str, offset: int) -> Iterator[CountingWriter]:
        _, segments = self._find(handle)
        self._cut(handle, segments, offset)
        key = f"{self._dir(handle)}s{offset:020d}-{uuid.uuid4().hex[:8]}"
        sink = self._blobs.sink(key)
        writer = CountingWriter(handle, sink.write)
        error: BaseException | None = None
        try:
            yield writer
        except BaseException as exc:  # keep what arrived: publish it, then re-raise
            error = exc
        if writer.size:
            try:
                sink.close()
            except BaseException:
                sink.abort()
                raise
        else:
            sink.abort()
        if error is not None:
            raise error

    def truncate(self, handle: str, size: int) -> None:
        _, segments = self._find(handle)
        self._cut(handle, segments, size)

    def size(self, handle: str) -> int | None:
        try:
            _, segments = self._find(handle)
        except NotFound:
            return None
        return sum(int(segment["size"]) for segment in segments)

    def finish(
        self, handle: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Blob:
        bucket, segments = self._find(handle)
        fid = uuid.uuid4().hex
        extra = {
            "ContentType": content_type or "application/octet-stream",
            "Metadata": {META_KEY: encode_record(filename, dict(metadata or {}))},
        }
        key = self._blobs.key(bucket, fid)
        ranges = _copy_ranges(segments)
        if ranges is not None:
            self._copy_server_side(key, extra, ranges)
        else:
            self._copy_streaming(key, extra, segments)
        size = sum(segment["size"] for segment in segments)
        self.delete(handle)
        return Blob(
            fid=fid,
            size=size,
            content_type=content_type,
            filename=filename,
            metadata=dict(metadata or {}),
        )

    def delete(self, handle: str) -> bool:
        if not isinstance(handle, str) or not _HANDLE.fullmatch(handle):
            return False
        keys = [item["Key"] for item in self._list(self._dir(handle))]
        if not keys:
            return False
        # The marker last: a delete cut short leaves an upload still found, and purged again.
        keys.sort(key=lambda k: k.endswith("/" + MARKER))
        with translate_errors():
            for key in keys:
                self._s3().delete_object(Bucket=self._bucket, Key=key)
        return True

    def stale(self, older_than: datetime) -> list[str]:
        cutoff = older_than.replace(tzinfo=timezone.utc)
        latest: dict[str, datetime] = {}
        for item in self._list(self._root):
            handle = item["Key"][len(self._root) :].split("/", 1)[0]
            if _HANDLE.fullmatch(handle):
                modified = item["LastModified"]
                if handle not in latest or modified > latest[handle]:
                    latest[handle] = modified
        return sorted(handle for handle, when in latest.items() if when < cutoff)

    # --- helpers ---------------------------------------------------------------------------

    @property
    def _bucket(self) -> str:
        return self._blobs.location.bucket

    def _s3(self) -> Any:
        return self._blobs.client()

    def _dir(self, handle: str) -> str:
        return f"{self._root}{handle}/"

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        with translate_errors():
            pages = (
                self._s3()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self._bucket, Prefix=prefix)
            )
            return [item for page in pages for item in page.get("Contents", [])]

    def _find(self, handle: str) -> tuple[str, list[dict[str, Any]]]:
        """The bucket the upload joins and its segments in order: key, start, size."""
        if not isinstance(handle, str) or not _HANDLE.fullmatch(handle):
            raise NotFound("upload not found")
        prefix = self._dir(handle)
        items = self._list(prefix)
        if not any(item["Key"] == prefix + MARKER for item in items):
            raise NotFound("upload not found")
        with translate_errors():
            answer = self._s3().get_object(Bucket=self._bucket, Key=prefix + MARKER)
            bucket = answer["Body"].read().decode()
        segments = []
        for item in items:
            match = _SEGMENT.fullmatch(item["Key"][len(prefix) :])
            if match:
                segments.append(
                    {"key": item["Key"], "start": int(match[1]), "size": int(item["Size"])}
                )
        segments.sort(key=lambda s: s["start"])
        return bucket, segments

    def _cut(self, handle: str, segments: list[dict[str, Any]], offset: int) -> None:
        """Drop what lies at or past offset; what is kept must end exactly there."""
        kept = [s for s in segments if s["start"] < offset]
        doomed = [s for s in segments if s["start"] >= offset]
        end = kept[-1]["start"] + kept[-1]["size"] if kept else 0
        if end < offset:
            raise NotFound("the stored upload is shorter than its offset")
        if end > offset:  # a segment spans the offset: keep its head as a new segment
            last = kept[-1]
            head = f"{self._dir(handle)}s{last['start']:020d}-{uuid.uuid4().hex[:8]}"
            sink = self._blobs.sink(head)
            try:
                with translate_errors():
                    body = self._s3().get_object(
                        Bucket=self._bucket,
                        Key=last["key"],
                        Range=f"bytes=0-{offset - last['start'] - 1}",
                    )["Body"]
                    while chunk := body.read(COPY_CHUNK):
                        sink.write(chunk)
                sink.close()
            except BaseException:
                sink.abort()
                raise
            doomed.append(last)
        with translate_errors():
            for segment in doomed:
                self._s3().delete_object(Bucket=self._bucket, Key=segment["key"])

    def _source(self, key: str) -> dict[str, str]:
        return {"Bucket": self._bucket, "Key": key}

    def _copy_server_side(
        self, key: str, extra: dict[str, Any], ranges: list[tuple[str, int, int]]
    ) -> None:
        s3 = self._s3()
        with translate_errors():
            upload_id = s3.create_multipart_upload(Bucket=self._bucket, Key=key, **extra)[
                "UploadId"
            ]
        try:
            parts = []
            with translate_errors():
                for number, (source, first, last) in enumerate(ranges, start=1):
                    answer = s3.upload_part_copy(
                        Bucket=self._bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=self._source(source),
                        CopySourceRange=f"bytes={first}-{last}",
                    )
                    parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
                s3.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            with suppress(Exception):
                s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
            raise

    def _copy_streaming(
        self, key: str, extra: dict[str, Any], segments: list[dict[str, Any]]
    ) -> None:
        sink = self._blobs.sink(key, extra)
        try:
            with translate_errors():
                for segment in segments:
                    body = self._s3().get_object(Bucket=self._bucket, Key=segment["key"])["Body"]
                    while chunk := body.read(COPY_CHUNK):
                        sink.write(chunk)
            sink.close()
        except BaseException:
            sink.abort()
            raise


def _copy_ranges(segments: list[dict[str, Any]]) -> list[tuple[str, int, int]] | None:
    """The parts of a server-side copy (key, first byte, last byte), or None when S3's rule that
    every part but the last holds 5 MiB or more rules it out (or there is nothing to copy)."""
    ranges = []
    for segment in segments:
        for first in range(0, segment["size"], MAX_COPY_PART):
            last = min(first + MAX_COPY_PART, segment["size"]) - 1
            ranges.append((segment["key"], first, last))
    if not ranges or any(last - first + 1 < MIN_PART for _, first, last in ranges[:-1]):
        return None
    return ranges
