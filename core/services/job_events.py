"""Live job events: every write of a job announces it (status or progress, with the job's
JSON), and a stream follows one job from its current state to its end without reading the
database again while the announcements arrive."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from core.domain.accounts import Principal
from core.domain.errors import Busy, NotFound, Unavailable
from core.domain.jobs import Job, JobStatus
from core.ports.events import EventSubscription, JobEvent, JobEventFeed, JobEventSink
from core.ports.jobs import JobLeases, JobRepository
from core.ports.limits import Slots
from core.services.job_json import job_json
from core.services.jobs import is_job_id

log = logging.getLogger(__name__)

TERMINAL = frozenset({"done", "failed", "cancelled", "expired"})


def event_id(job: dict[str, Any]) -> int:
    """A job state's event id: its updated_at in microseconds. Every write moves updated_at
    forward (the database's clock), so ids grow with the job's changes, survive a Redis
    restart, and a reconnect's Last-Event-ID compares with them."""
    stamp = job.get("updated_at")
    if not stamp:
        return 0
    moment = datetime.fromisoformat(stamp)
    return int(moment.timestamp() * 1_000_000)


class _Announcer:
    def __init__(self, sink: JobEventSink, read: Callable[[str], Job | None]):
        self._sink = sink
        self._read = read

    def changed(self, job_id: str, status_changed: bool) -> None:
        """Publish the job as it is now; a failure is logged, never raised: the write it
        follows stands, and a stream that missed it resyncs from the database."""
        try:
            job = self._read(job_id)
            if job is None:
                self._sink.publish(job_id, {"kind": "deleted", "job": None})
                return
            kind = "status" if status_changed else "progress"
            self._sink.publish(job_id, {"kind": kind, "job": job_json(job)})
        except Unavailable:
            log.info("job %s: its change was not announced (events unavailable)", job_id)
        except Exception:  # noqa: BLE001 - announcing must never undo a committed write
            log.warning("job %s: announcing its change failed", job_id, exc_info=True)


class AnnouncingJobRepository(JobRepository):
    """A JobRepository whose changes are announced on the event sink."""

    def __init__(self, inner: JobRepository, sink: JobEventSink):
        self.inner = inner
        self._announce = _Announcer(sink, inner.get)

    def add(self, job: Job) -> Job:
        return self.inner.add(job)

    def get(self, job_id: str) -> Job | None:
        return self.inner.get(job_id)

    def list_for_owner(
        self,
        owner_id: int,
        offset: int,
        limit: int,
        status: JobStatus | None = None,
        tag: str | None = None,
    ) -> tuple[list[Job], int]:
        return self.inner.list_for_owner(owner_id, offset, limit, status, tag)

    def list_ids_for_owner(self, owner_id: int) -> list[str]:
        return self.inner.list_ids_for_owner(owner_id)

    def update(
        self,
        job_id: str,
        changes: dict[str, Any],
        only_if_status: tuple[JobStatus, ...] | None = None,
    ) -> bool:
        changed = self.inner.update(job_id, changes, only_if_status)
        if changed:
            self._announce.changed(job_id, "status" in changes)
        return changed

    def delete(self, job_id: str) -> bool:
        deleted = self.inner.delete(job_id)
        if deleted:
            self._announce.changed(job_id, True)
        return deleted


class AnnouncingJobLeases(JobLeases):
    """JobLeases whose claims and leased writes are announced (a renewal is not a change)."""

    def __init__(self, inner: JobLeases, sink: JobEventSink, read: Callable[[str], Job | None]):
        self.inner = inner
        self._announce = _Announcer(sink, read)

    def claim(
        self,
        job_id: str,
        lease_id: str,
        expires_at: datetime,
        now: datetime,
        holder: str | None = None,
    ) -> bool:
        claimed = self.inner.claim(job_id, lease_id, expires_at, now, holder)
        if claimed:
            self._announce.changed(job_id, True)
        return claimed

    def take_over(
        self,
        job_id: str,
        dead_lease_id: str,
        lease_id: str,
        expires_at: datetime,
        holder: str | None = None,
    ) -> bool:
        taken = self.inner.take_over(job_id, dead_lease_id, lease_id, expires_at, holder)
        if taken:
            self._announce.changed(job_id, True)
        return taken

    def renew(self, job_id: str, lease_id: str, expires_at: datetime) -> bool:
        return self.inner.renew(job_id, lease_id, expires_at)

    def update_leased(self, job_id: str, lease_id: str, changes: dict[str, Any]) -> bool:
        changed = self.inner.update_leased(job_id, lease_id, changes)
        if changed:
            self._announce.changed(job_id, "status" in changes)
        return changed


@dataclass(frozen=True)
class StreamLimits:
    """How many streams a process and a user may hold, and their pace."""

    per_process: int
    per_user: int
    keepalive_seconds: float = 15.0
    progress_seconds: float = 0.5
    resync_seconds: float = 2.0  # how often a stream reads its job while the feed is cut
    buffer: int = 64  # events waiting for a stream that does not keep up
    retry_after: int = 5


def sse(event: str | None = None, data: str | None = None, ident: int | None = None) -> str:
    """One Server-Sent Events frame. Hand-written: the format is four field names and a blank
    line (HTML Living Standard, 9.2), and no library we use writes it."""
    lines = []
    if ident is not None:
        lines.append(f"id: {ident}")
    if event is not None:
        lines.append(f"event: {event}")
    if data is not None:
        lines.extend(f"data: {line}" for line in data.split("\n"))
    return "\n".join(lines) + "\n\n"


class JobStreams:
    """Opens event streams on jobs within the process's and the user's budgets."""

    def __init__(
        self,
        jobs: JobRepository,
        feed: JobEventFeed,
        slots: Slots | None,
        limits: StreamLimits,
        dumps: Callable[[dict[str, Any]], str],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.jobs = jobs
        self.feed = feed
        self.slots = slots
        self.limits = limits
        self.dumps = dumps
        self.clock = clock
        self._lock = threading.Lock()
        self._open = 0
        self.closing = threading.Event()

    @property
    def open_streams(self) -> int:
        return self._open

    def shutdown(self) -> None:
        """The process is stopping: every stream ends now (its client reconnects elsewhere)
        and every long poll answers, instead of holding the stop until they end."""
        self.closing.set()
        self.feed.wake_all()

    def _take(self, actor: Principal) -> tuple[str, str | None]:
        """A place in the process's and the user's budgets, or Busy."""
        with self._lock:
            if self._open >= self.limits.per_process:
                raise Busy(
                    "too many event streams open here; poll or retry", self.limits.retry_after
                )
            self._open += 1
        key = f"event-streams:{actor.user_id}"
        token: str | None = None
        try:
            if self.slots is not None:
                token = self.slots.acquire({key: self.limits.per_user}, ttl=60.0)
                if token is None:
                    raise Busy(
                        "you have too many event streams open; close one, or poll",
                        self.limits.retry_after,
                    )
        except BaseException:
            self._release(key, None)
            raise
        return key, token

    def open(self, actor: Principal, job_id: str) -> "JobStream":
        """A stream of the job's events, its current state first. NotFound for another user's
        job; Busy past the process's or the user's budget."""
        if not is_job_id(job_id):
            raise NotFound("job not found")
        key, token = self._take(actor)
        sub: EventSubscription | None = None
        try:
            sub = self.feed.subscribe(job_id, self.limits.buffer)  # before reading: none lost
            job = self.jobs.get(job_id)
            if job is None or not actor.can_access(job.owner_id):
                raise NotFound("job not found")
        except BaseException:
            if sub is not None:
                sub.close()
            self._release(key, token)
            raise
        return JobStream(
            self, job_id, job_json(job), sub, lambda: self._release(key, token), key, token
        )

    @contextmanager
    def watching(self, actor: Principal, job_id: str) -> Iterator["Watch"]:
        """For a long poll: a watch on the job's changes, within the same budgets as the
        streams (Busy past them). Taken before the job is read, so no change slips between."""
        key, token = self._take(actor)
        try:
            sub = self.feed.subscribe(job_id, 8)
        except BaseException:
            self._release(key, token)
            raise
        try:
            yield Watch(sub, self.limits.resync_seconds, self.clock, self.closing)
        finally:
            sub.close()
            self._release(key, token)

    def _release(self, key: str, token: str | None) -> None:
        with self._lock:
            self._open -= 1
        if token is not None and self.slots is not None:
            try:
                self.slots.release([key], token)
            except Unavailable:
                pass  # the slot frees itself after its ttl

    def renew(self, key: str, token: str | None) -> None:
        if token is not None and self.slots is not None:
            try:
                self.slots.renew([key], token, ttl=60.0)
            except Unavailable:
                pass


class Watch:
    """Waits for a sign that a job may have changed."""

    def __init__(
        self,
        sub: EventSubscription,
        resync_seconds: float,
        clock: Callable[[], float],
        closing: threading.Event,
    ):
        self._sub = sub
        self._resync = resync_seconds
        self._clock = clock
        self._closing = closing
        self._generation = sub.generation

    def changed(self, until: float) -> bool:
        """True as soon as the job may have changed (an event of it; the feed reconnected;
        while the feed is cut, every resync_seconds); False at `until` (clock time)."""
        while True:
            left = until - self._clock()
            if left <= 0 or self._closing.is_set():
                return False
            wait = left if self._sub.live else min(left, self._resync)
            event = self._sub.get(timeout=wait)
            if self._sub.generation != self._generation or self._sub.overflowed:
                self._generation = self._sub.generation
                return True
            if event is not None and event.get("kind") != "wake":
                return True
            if event is None and not self._sub.live and self._clock() < until:
                return True  # cut off from the events: time to look again


class JobStream:
    """Iterates over SSE frames: the current state, then `status` at once on each change,
    `progress` at most every progress_seconds, a keepalive comment when quiet, until the job
    ends (or is deleted, or the client falls behind its buffer)."""

    def __init__(
        self,
        streams: JobStreams,
        job_id: str,
        first: dict[str, Any],
        sub: EventSubscription,
        release: Callable[[], None],
        slot_key: str,
        slot_token: str | None,
    ):
        self._streams = streams
        self.job_id = job_id
        self._first = first
        self._sub = sub
        self._release = release
        self._slot = (slot_key, slot_token)
        self._closed = False
        self.ended_by: str | None = None  # why it ended: terminal, deleted, overflow

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sub.close()
            self._release()

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._frames()
        finally:
            self.close()

    def _frame(self, kind: str, job: dict[str, Any]) -> str:
        return sse(kind, self._streams.dumps(job), event_id(job))

    def _frames(self) -> Iterator[str]:
        limits, clock = self._streams.limits, self._streams.clock
        job = self._first
        last_id, last_status = event_id(job), job["status"]
        yield "retry: 2000\n\n" + self._frame("status", job)
        if last_status in TERMINAL:
            self.ended_by = "terminal"
            return
        generation = self._sub.generation
        pending: dict[str, Any] | None = None
        now = clock()
        next_progress = now  # the first progress may go at once
        quiet_since = now
        renew_at = now + 20.0
        resync_at = now + limits.resync_seconds
        while True:
            now = clock()
            waits = [quiet_since + limits.keepalive_seconds - now, renew_at - now]
            if pending is not None:
                waits.append(next_progress - now)
            if not self._sub.live:
                waits.append(resync_at - now)
            event = self._sub.get(timeout=max(0.0, min(waits)))
            if self._sub.overflowed:
                self.ended_by = "overflow"
                return
            if self._streams.closing.is_set():
                self.ended_by = "shutdown"
                return
            now = clock()
            fresh: list[JobEvent] = [event] if event and event.get("kind") != "wake" else []
            resync = self._sub.generation != generation or (not self._sub.live and now >= resync_at)
            if resync:  # events may have been lost: the database says where the job is
                resync_at = now + limits.resync_seconds
                try:
                    current = self._streams.jobs.get(self.job_id)
                except Unavailable:
                    pass  # MySQL is down too: the stream stays open and asks again later
                else:
                    generation = self._sub.generation
                    fresh.append(
                        {"kind": "deleted", "job": None}
                        if current is None
                        else {"kind": "state", "job": job_json(current)}
                    )
            for item in fresh:
                if item.get("kind") == "deleted":
                    yield sse("deleted", self._streams.dumps({"id": self.job_id}))
                    self.ended_by = "deleted"
                    return
                state = item.get("job")
                if not isinstance(state, dict):
                    continue
                ident = event_id(state)
                if ident < last_id:
                    continue  # older than what the client has
                if state["status"] != last_status:
                    pending = None
                    last_id, last_status = ident, state["status"]
                    quiet_since = now
                    yield self._frame("status", state)
                    if last_status in TERMINAL:
                        self.ended_by = "terminal"
                        return
                elif ident > last_id:
                    pending = state
            if pending is not None and now >= next_progress:
                last_id = event_id(pending)
                quiet_since, next_progress = now, now + limits.progress_seconds
                yield self._frame("progress", pending)
                pending = None
            if now - quiet_since >= limits.keepalive_seconds:
                quiet_since = now
                yield ": keepalive\n\n"
            if now >= renew_at:
                renew_at = now + 20.0
                self._streams.renew(*self._slot)
