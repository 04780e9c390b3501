"""Abstract interfaces the services depend on. Adapters in core.adapters implement them."""
from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from core.domain import Blob, Email, Job, JobStatus, NewUser, User


class UserRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, user: NewUser) -> User:
        """Insert a user; raises Conflict when the name or email is taken."""

    @abc.abstractmethod
    def get(self, user_id: int) -> User | None: ...

    @abc.abstractmethod
    def get_by_email(self, email: str) -> User | None: ...

    @abc.abstractmethod
    def get_by_name(self, name: str) -> User | None: ...

    @abc.abstractmethod
    def list(self, offset: int, limit: int) -> tuple[list[User], int]:
        """One page of users ordered by id, and the total count."""

    @abc.abstractmethod
    def update(self, user_id: int, changes: dict[str, Any]) -> User | None:
        """Apply column changes; raises Conflict on a taken name or email."""

    @abc.abstractmethod
    def delete(self, user_id: int) -> bool: ...


class JobRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, job: Job) -> Job: ...

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def list_for_owner(self, owner_id: int, offset: int, limit: int) -> tuple[list[Job], int]:
        """One page of an owner's jobs, newest first, and the total count."""

    @abc.abstractmethod
    def list_ids_for_owner(self, owner_id: int) -> list[str]: ...

    @abc.abstractmethod
    def update(self, job_id: str, changes: dict[str, Any],
               only_if_status: tuple[JobStatus, ...] | None = None) -> bool:
        """Apply changes; with only_if_status, only when the job is in one of those states.
        Returns whether a row changed state."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> bool: ...

    @abc.abstractmethod
    def stale(self, statuses: tuple[JobStatus, ...], older_than: datetime) -> list[Job]:
        """Jobs in these states not updated since older_than."""


class BlobWriter(Protocol):
    """What a blob store's writer() yields: the new file's id, and a sink for its bytes."""

    fid: str
    size: int

    def write(self, data: bytes) -> int: ...


class BlobStore(abc.ABC):
    """Named buckets ("videos", "mp3s") of immutable files addressed by a string id."""

    @abc.abstractmethod
    def writer(self, bucket: str, filename: str, content_type: str,
               metadata: dict[str, Any] | None = None) -> AbstractContextManager[BlobWriter]:
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


class ItemStore(abc.ABC):
    """JSON objects with an expiry, kept per owner."""

    @abc.abstractmethod
    def put(self, owner_id: int, key: str, value: dict[str, Any], ttl: int) -> bool:
        """Store; returns True when the key was new."""

    @abc.abstractmethod
    def get(self, owner_id: int, key: str) -> tuple[dict[str, Any], int] | None:
        """The stored object and its remaining seconds, or None when missing or expired."""

    @abc.abstractmethod
    def delete(self, owner_id: int, key: str) -> bool: ...

    @abc.abstractmethod
    def incr_hits(self) -> int: ...

    @abc.abstractmethod
    def ping(self) -> None: ...


class RateLimiter(abc.ABC):
    """Counters that expire a fixed window after their first hit."""

    @abc.abstractmethod
    def count(self, key: str) -> tuple[int, int]:
        """Hits so far and seconds until the window ends (0, 0 when none)."""

    @abc.abstractmethod
    def hit(self, key: str, window: int) -> int:
        """Count one more; the window starts at the first hit. Returns the new count."""

    @abc.abstractmethod
    def reset(self, key: str) -> None: ...


TokenState = tuple[int, str]  # (token_version, role) of a user


class TokenStates(abc.ABC):
    """A shared cache of each user's token state, so checking a token needs no SQL.
    `None` records a deleted user."""

    @abc.abstractmethod
    def get(self, user_id: int) -> tuple[bool, TokenState | None]:
        """(found, state); found is False on a miss."""

    @abc.abstractmethod
    def offer(self, user_id: int, state: TokenState | None) -> None:
        """Cache a state read from the repository, unless one is cached already."""

    @abc.abstractmethod
    def publish(self, user_id: int, state: TokenState | None) -> None:
        """Record a state that just changed, replacing whatever is cached."""


class Mailer(abc.ABC):
    @abc.abstractmethod
    def send(self, email: Email) -> None:
        """Deliver or raise; transient failures raise MailError."""


class TaskQueue(abc.ABC):
    @abc.abstractmethod
    def enqueue_convert(self, job_id: str) -> None: ...

    @abc.abstractmethod
    def enqueue_notify(self, job_id: str) -> None: ...


class MailError(Exception):
    """Mail could not be delivered now; worth retrying."""


class Metrics(abc.ABC):
    """What the service counts for its operators; the Prometheus adapter implements it."""

    @abc.abstractmethod
    def upload_received(self, size: int) -> None:
        """A video of `size` bytes was accepted."""

    @abc.abstractmethod
    def job_finished(self, outcome: str, seconds: float | None = None) -> None:
        """A conversion ended: succeeded (with its duration), failed or cancelled."""

    @abc.abstractmethod
    def email(self, outcome: str) -> None:
        """An email delivery attempt: sent, skipped, retry or failed."""

    @abc.abstractmethod
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """An HTTP request answered, by route template (never the raw path)."""


class NullMetrics(Metrics):
    """Counts nothing (unit tests, tools)."""

    def upload_received(self, size: int) -> None:
        pass

    def job_finished(self, outcome: str, seconds: float | None = None) -> None:
        pass

    def email(self, outcome: str) -> None:
        pass

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass
