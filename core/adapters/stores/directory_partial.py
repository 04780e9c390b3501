"""Partial uploads of the directory store: one file appended to in place, renamed on finish."""

from __future__ import annotations

import json
import os
import re
import uuid
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any, Iterator

from core.adapters.stores.blob_writer import CountingWriter
from core.adapters.stores.directory import DirectoryBlobStore, fsync_dir, write_durably
from core.domain.errors import NotFound
from core.domain.files import Blob
from core.ports.uploads import PartialUploadStore

_HANDLE = re.compile(r"[0-9a-f]{32}")
_BUCKET_SUFFIX = ".bucket"  # beside each partial file: the bucket it will join
PARTIAL_DIR = ".partial"  # never a bucket name: buckets start with a letter or digit


class DirectoryPartialUploads(PartialUploadStore):
    """root/.partial/<handle> grows with each append; finishing renames it to
    root/<bucket>/<handle> (same file system: no second copy) and writes its sidecar."""

    def __init__(self, blob_store: DirectoryBlobStore):
        self._blobs = blob_store
        self._dir = os.path.join(blob_store.root, PARTIAL_DIR)

    def create(self, bucket: str) -> str:
        os.makedirs(self._dir, exist_ok=True)
        self._blobs._bucket_dir(bucket)  # a bad bucket name fails now, not at the end
        handle = uuid.uuid4().hex
        with open(os.path.join(self._dir, handle), "xb"):
            pass
        with open(os.path.join(self._dir, handle + _BUCKET_SUFFIX), "x", encoding="utf-8") as fh:
            fh.write(bucket)
        return handle

    @contextmanager
    def appender(self, handle: str, offset: int) -> Iterator[CountingWriter]:
        path = self._path(handle)
        try:
            target = open(path, "r+b")
        except FileNotFoundError:
            raise NotFound("upload not found") from None
        with target:
            if os.fstat(target.fileno()).st_size < offset:
                raise NotFound("the stored upload is shorter than its offset")
            target.truncate(offset)
            target.seek(offset)
            writer = CountingWriter(handle, target.write)
            try:
                yield writer
            finally:  # keep what arrived, whatever ended the block
                target.flush()
                os.fsync(target.fileno())

    def truncate(self, handle: str, size: int) -> None:
        with suppress(FileNotFoundError):
            os.truncate(self._path(handle), size)

    def size(self, handle: str) -> int | None:
        try:
            return os.path.getsize(self._path(handle))
        except (FileNotFoundError, NotFound):
            return None

    def finish(
        self, handle: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Blob:
        path = self._path(handle)
        try:
            with open(path + _BUCKET_SUFFIX, encoding="utf-8") as fh:
                bucket = fh.read().strip()
        except FileNotFoundError:
            raise NotFound("upload not found") from None
        directory = self._blobs._bucket_dir(bucket)
        os.makedirs(directory, exist_ok=True)
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            raise NotFound("upload not found") from None
        extra = dict(metadata or {})
        record = {
            "filename": filename,
            "content_type": content_type,
            "metadata": extra,
            "size": size,
        }
        sidecar_tmp = write_durably(directory, f".{handle}.json.", json.dumps(record))
        try:
            data_path = os.path.join(directory, handle)
            os.replace(path, data_path)  # the data first: the sidecar makes the blob exist
            os.replace(sidecar_tmp, data_path + ".json")
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(sidecar_tmp)
            raise
        fsync_dir(directory)
        with suppress(FileNotFoundError):
            os.unlink(path + _BUCKET_SUFFIX)
        return Blob(
            fid=handle, size=size, content_type=content_type, filename=filename, metadata=extra
        )

    def delete(self, handle: str) -> bool:
        try:
            path = self._path(handle)
        except NotFound:
            return False
        with suppress(FileNotFoundError):
            os.unlink(path + _BUCKET_SUFFIX)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def stale(self, older_than: datetime) -> list[str]:
        cutoff = older_than.replace(tzinfo=timezone.utc).timestamp()
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if _HANDLE.fullmatch(name):
                with suppress(FileNotFoundError):
                    if os.path.getmtime(os.path.join(self._dir, name)) < cutoff:
                        found.append(name)
        return sorted(found)

    def _path(self, handle: str) -> str:
        if not isinstance(handle, str) or not _HANDLE.fullmatch(handle):
            raise NotFound("upload not found")
        return os.path.join(self._dir, handle)
