"""Job events between processes: a job's writer publishes each change, the API's open event
streams hear them without asking the database."""

from __future__ import annotations

import abc
from typing import Any

# A job event: {"kind": "status" | "progress" | "deleted", "job": the job's JSON (or None)}.
JobEvent = dict[str, Any]


class JobEventSink(abc.ABC):
    """Where job changes are announced (fire and forget: a lost event costs a stream a
    resync, never a write)."""

    @abc.abstractmethod
    def publish(self, job_id: str, event: JobEvent) -> None:
        """Announce the event to every listener of the job; Unavailable when it cannot."""


class EventSubscription(abc.ABC):
    """The events of one job for one listener, buffered up to a bound."""

    @abc.abstractmethod
    def get(self, timeout: float) -> JobEvent | None:
        """The next event, or None after timeout seconds without one."""

    @property
    @abc.abstractmethod
    def overflowed(self) -> bool:
        """The listener fell behind its buffer: events were dropped and it should end."""

    @property
    @abc.abstractmethod
    def live(self) -> bool:
        """Events are arriving now (False while the feed is cut, e.g. Redis is down)."""

    @property
    @abc.abstractmethod
    def generation(self) -> int:
        """Grows each time the feed (re)connects: events between two may have been missed."""

    @abc.abstractmethod
    def close(self) -> None: ...


class JobEventFeed(abc.ABC):
    """Subscriptions to job events, shared by the process's listeners."""

    @abc.abstractmethod
    def subscribe(self, job_id: str, buffer: int) -> EventSubscription: ...

    @abc.abstractmethod
    def listeners(self) -> int:
        """Subscriptions open in this process."""

    @abc.abstractmethod
    def wake_all(self) -> None:
        """Let every subscription of this process that waits for an event return now."""
