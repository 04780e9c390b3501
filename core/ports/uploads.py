"""Resumable (tus) uploads: their bytes, appended piece by piece, and their state."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from core.domain.files import Blob
from core.domain.jobs import Upload


class PartialAppender(Protocol):
    """What PartialUploadStore.appender() yields: a sink counting the bytes it kept."""

    size: int

    def write(self, data: bytes) -> int: ...


class PartialUploadStore(abc.ABC):
    """Unfinished uploads kept in the blob store, appended to piece by piece; `finish`
    turns one into an ordinary file of a bucket."""

    @abc.abstractmethod
    def create(self, bucket: str) -> str:
        """Start an empty partial upload that will become a file of bucket; returns its handle."""

    @abc.abstractmethod
    def appender(self, handle: str, offset: int) -> AbstractContextManager[PartialAppender]:
        """Append at offset: anything stored beyond offset is dropped first. Whatever was
        written is kept however the block ends (a dropped connection keeps what arrived)."""

    @abc.abstractmethod
    def truncate(self, handle: str, size: int) -> None:
        """Drop everything past size (a rejected chunk)."""

    @abc.abstractmethod
    def size(self, handle: str) -> int | None:
        """Bytes stored, or None when there is no such partial upload."""

    @abc.abstractmethod
    def finish(
        self, handle: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Blob:
        """Publish the bytes as a file of the bucket given at creation (without copying them
        when the store can) and forget the partial upload."""

    @abc.abstractmethod
    def delete(self, handle: str) -> bool: ...

    @abc.abstractmethod
    def stale(self, older_than: datetime) -> list[str]:
        """Handles of partial uploads not written to since older_than (naive UTC)."""


class UploadRepository(abc.ABC):
    """The state of resumable uploads, with a lease per upload so one PATCH writes at a time."""

    @abc.abstractmethod
    def add(self, upload: Upload) -> None: ...

    @abc.abstractmethod
    def get(self, upload_id: str) -> Upload | None: ...

    @abc.abstractmethod
    def update(self, upload_id: str, changes: dict[str, Any]) -> None:
        """Set offset, expires_at or job_id."""

    @abc.abstractmethod
    def delete(self, upload_id: str) -> bool: ...

    @abc.abstractmethod
    def expired(self, now: float) -> list[str]:
        """Ids of uploads whose expires_at is before now."""

    @abc.abstractmethod
    def lock(self, upload_id: str, ttl: float) -> AbstractContextManager[Any | None]:
        """Hold the upload's lease for the block, or yield None when someone else holds it.
        The yielded lease's `renew()` pushes its expiry ttl seconds further."""
