"""Stored files: the blob store of videos and MP3s, and the scratch directories of a
conversion."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, Protocol

from core.domain.files import Blob


class BlobWriter(Protocol):
    """What a blob store's writer() yields: the new file's id, and a sink for its bytes."""

    fid: str
    size: int

    def write(self, data: bytes) -> int: ...


class BlobStore(abc.ABC):
    """Named buckets ("videos", "mp3s") of immutable files addressed by a string id."""

    @abc.abstractmethod
    def writer(
        self, bucket: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> AbstractContextManager[BlobWriter]:
        """Stream a new file in. On a clean exit the file becomes visible and the writer's
        `fid` attribute holds its id; on an exception nothing is left behind."""

    @abc.abstractmethod
    def stat(self, bucket: str, fid: str) -> Blob | None: ...

    @abc.abstractmethod
    def open(self, bucket: str, fid: str) -> AbstractContextManager[BinaryIO]:
        """A seekable binary reader; raises NotFound for an unknown id."""

    @abc.abstractmethod
    def local_path(self, bucket: str, fid: str, scratch_dir: str) -> AbstractContextManager[str]:
        """A path on local disk holding the file for the duration of the block: the file
        itself when the store keeps files on disk, else a copy in scratch_dir removed on exit."""

    @abc.abstractmethod
    def delete(self, bucket: str, fid: str) -> bool: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise Unavailable when the store cannot be reached."""

    def download_url(
        self,
        bucket: str,
        fid: str,
        seconds: int,
        content_disposition: str,
        content_type: str = "audio/mpeg",
    ) -> str | None:
        """A URL serving the file itself for `seconds` (with this Content-Disposition and
        Content-Type), so clients fetch it from the store directly; None when the store cannot
        hand one out."""
        return None


class ScratchSpace(abc.ABC):
    """Private working directories, one per conversion attempt."""

    @abc.abstractmethod
    def attempt(self, job_id: str, attempt_id: str) -> AbstractContextManager[str]:
        """A fresh directory for this attempt, removed with its contents on exit; leftovers of
        the job's earlier attempts (which no longer hold the lease) are removed first."""
