"""A BlobStore keeping each file on local disk, with a JSON sidecar for its metadata."""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO, Iterator

from core.adapters.stores.blob_writer import CountingWriter
from core.domain.errors import NotFound, Unavailable
from core.domain.files import Blob
from core.ports.files import BlobStore

_FID = re.compile(r"[0-9a-f]{32}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SIDECAR = ".json"
_PART = ".part"


class DirectoryBlobStore(BlobStore):
    """Files under root/<bucket>/<fid>; a file exists once its sidecar <fid>.json does."""

    def __init__(self, root: str):
        self._root = os.path.abspath(root)

    @property
    def root(self) -> str:
        """The directory holding one sub-directory per bucket."""
        return self._root

    @contextmanager
    def writer(
        self, bucket: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Iterator[CountingWriter]:
        """Stream a new file into a temp name; publish it atomically on a clean exit."""
        directory = self._bucket_dir(bucket)
        extra = dict(metadata or {})
        json.dumps(extra)  # fail before streaming anything when metadata cannot be stored
        os.makedirs(directory, exist_ok=True)
        fid = uuid.uuid4().hex
        data_path = os.path.join(directory, fid)
        sidecar_path = data_path + _SIDECAR
        fd, data_tmp = tempfile.mkstemp(dir=directory, prefix=f".{fid}.", suffix=_PART)
        leftovers = [data_tmp]
        try:
            with os.fdopen(fd, "wb") as target:
                blob_writer = CountingWriter(fid, target.write)
                yield blob_writer
                target.flush()
                os.fsync(target.fileno())
            record = {
                "filename": filename,
                "content_type": content_type,
                "metadata": extra,
                "size": blob_writer.size,
            }
            sidecar_tmp = write_durably(directory, f".{fid}{_SIDECAR}.", json.dumps(record))
            leftovers.append(sidecar_tmp)
            # The data file goes first: the sidecar's appearance is what makes the blob exist.
            os.replace(data_tmp, data_path)
            leftovers[0] = data_path
            os.replace(sidecar_tmp, sidecar_path)
            leftovers.clear()
            fsync_dir(directory)
        finally:
            for path in leftovers:
                with suppress(FileNotFoundError):
                    os.unlink(path)

    def stat(self, bucket: str, fid: str) -> Blob | None:
        """The file's size and metadata, or None when there is no such file."""
        path = self._data_path(bucket, fid)
        if path is None:
            return None
        try:
            with open(path + _SIDECAR, encoding="utf-8") as fh:
                record = json.load(fh)
        except FileNotFoundError:
            return None
        return Blob(
            fid=fid,
            size=int(record["size"]),
            content_type=record.get("content_type") or "application/octet-stream",
            filename=record.get("filename"),
            metadata=dict(record.get("metadata") or {}),
        )

    def open(self, bucket: str, fid: str) -> BinaryIO:
        """The file opened for binary reading; raises NotFound for an unknown id."""
        path = self._existing_path(bucket, fid)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise NotFound("file not found", {"bucket": bucket}) from None

    @contextmanager
    def local_path(self, bucket: str, fid: str, scratch_dir: str) -> Iterator[str]:
        """The stored file's own path: no copy is made, so scratch_dir is unused."""
        yield self._existing_path(bucket, fid)

    def delete(self, bucket: str, fid: str) -> bool:
        """Remove a file; returns whether it existed."""
        path = self._data_path(bucket, fid)
        if path is None:
            return False
        try:
            os.unlink(path + _SIDECAR)
        except FileNotFoundError:
            return False
        with suppress(FileNotFoundError):
            os.unlink(path)
        return True

    def ping(self) -> None:
        """Raise Unavailable unless the root is a directory we can create files in."""
        try:
            os.makedirs(self._root, exist_ok=True)
            with tempfile.TemporaryFile(dir=self._root):
                pass
        except OSError as exc:
            raise Unavailable("blob store", f"blob store is unavailable: {exc}") from exc

    # --- paths ---------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> str:
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise ValueError(f"invalid bucket name: {bucket!r}")
        return os.path.join(self._root, bucket)

    def _data_path(self, bucket: str, fid: str) -> str | None:
        """Where the file lives, or None when fid is not a well-formed id."""
        directory = self._bucket_dir(bucket)
        if not isinstance(fid, str) or not _FID.fullmatch(fid):
            return None
        return os.path.join(directory, fid)

    def _existing_path(self, bucket: str, fid: str) -> str:
        path = self._data_path(bucket, fid)
        if path is None or not os.path.exists(path + _SIDECAR):
            raise NotFound("file not found", {"bucket": bucket})
        return path


def write_durably(directory: str, prefix: str, text: str) -> str:
    """Write text to a new temp file in directory, fsync it and return its path."""
    fd, path = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=_PART)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(path)
        raise
    return path


def fsync_dir(directory: str) -> None:
    """Make the renames in directory durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
