"""Job events over Redis pub/sub: one channel per job, `<prefix>job-events:<id>`.

Each process listens through ONE pub/sub connection and one thread (a pattern subscription
to every job's channel), and hands each event to the subscriptions of that job in this
process: an open stream costs neither a Redis connection nor a thread of its own here. The
listener reconnects after an outage, with backoff, and bumps its generation so that each
stream re-reads its job once (events published meanwhile were lost)."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from typing import Any

import redis

from core.adapters.redis.client import guard
from core.ports.events import EventSubscription, JobEvent, JobEventFeed, JobEventSink

log = logging.getLogger(__name__)

_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


class _Subscription(EventSubscription):
    def __init__(self, hub: "RedisJobEvents", job_id: str, buffer: int):
        self._hub = hub
        self.job_id = job_id
        self._queue: queue.Queue[JobEvent] = queue.Queue(maxsize=buffer)
        self._overflowed = False
        self._closed = False

    def offer(self, event: JobEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._overflowed = True

    def wake(self) -> None:
        """Let a waiting get() return, to look at live/generation again."""
        try:
            self._queue.put_nowait({"kind": "wake"})
        except queue.Full:
            pass

    def get(self, timeout: float) -> JobEvent | None:
        try:
            return self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    @property
    def live(self) -> bool:
        return self._hub.connected

    @property
    def generation(self) -> int:
        return self._hub.generation

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub._remove(self)


class RedisJobEvents(JobEventSink, JobEventFeed):
    """Publishes and listens on Redis; the listening thread starts with the first
    subscription of a process (never at import, never before a fork)."""

    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix
        self._lock = threading.Lock()
        self._subs: dict[str, set[_Subscription]] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stop = threading.Event()
        self.connected = False
        self.generation = 0

    def channel(self, job_id: str) -> str:
        return f"{self.prefix}job-events:{job_id}"

    @guard
    def publish(self, job_id: str, event: JobEvent) -> None:
        self.client.publish(self.channel(job_id), json.dumps(event, separators=(",", ":")))

    def subscribe(self, job_id: str, buffer: int) -> EventSubscription:
        sub = _Subscription(self, job_id, buffer)
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread is not ours
                self._pid, self._thread, self._subs = os.getpid(), None, {}
                self.connected = False
            self._subs.setdefault(job_id, set()).add(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._listen, name="job-events", daemon=True)
                self._thread.start()
        return sub

    def listeners(self) -> int:
        with self._lock:
            return sum(len(subs) for subs in self._subs.values())

    def wake_all(self) -> None:
        for sub in self._everyone():
            sub.wake()

    def _remove(self, sub: _Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.job_id]

    def close(self) -> None:
        """Stop the listening thread (tests; a process exits without it)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _everyone(self) -> list[_Subscription]:
        with self._lock:
            return [sub for subs in self._subs.values() for sub in subs]

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self.connected = connected
            if connected:
                self.generation += 1
        for sub in self._everyone():
            sub.wake()

    def _listen(self) -> None:
        failures = 0
        pattern = f"{self.prefix}job-events:*".replace("[", "\\[")
        skip = len(self.prefix) + len("job-events:")
        while not self._stop.is_set():
            pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.psubscribe(pattern)
                # Live once Redis confirms the subscription, not before.
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "psubscribe":
                        break
                self._set_connected(True)
                failures = 0
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "pmessage":
                        self._deliver(message["channel"][skip:].decode(), message["data"])
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                log.warning("job events: Redis connection lost; reconnecting", exc_info=False)
            except Exception:  # noqa: BLE001 - the listener must outlive a bad message
                log.exception("job events: listener error; reconnecting")
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001
                    log.debug("closing the job events pub/sub", exc_info=True)
            if self.connected:
                self._set_connected(False)
            if self._stop.wait(_BACKOFF[min(failures, len(_BACKOFF) - 1)]):
                break
            failures += 1

    def _deliver(self, job_id: str, data: Any) -> None:
        with self._lock:
            subs = list(self._subs.get(job_id, ()))
        if not subs:
            return
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("job events: an unreadable event on job %s", job_id)
            return
        for sub in subs:
            sub.offer(event)
