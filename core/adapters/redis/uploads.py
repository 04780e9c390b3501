"""The state of resumable uploads in Redis: one hash per upload, an expiry index, a lease.

Redis rather than MySQL: the offset changes on every PATCH, the lease must free itself
when a gunicorn worker dies mid-request (a key with a TTL does), and the expiry index is a
sorted set. Losing Redis loses only resumability (clients start again from 0); the purge
still finds the orphaned bytes through PartialUploadStore.stale().
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator, cast

import redis
from redis.exceptions import LockError

from core.adapters.redis.client import guard
from core.domain.jobs import Upload
from core.ports.uploads import UploadRepository

GRACE_SECONDS = 7 * 24 * 3600  # a hash outlives its expiry so the purge can still find its data


class RedisLease:
    """A held upload lock; renew() keeps it while a long PATCH is still streaming."""

    def __init__(self, lock: redis.lock.Lock, ttl: float):
        self._lock = lock
        self._ttl = ttl

    @guard
    def renew(self) -> bool:
        try:
            return bool(self._lock.reacquire())
        except LockError:
            return False


class RedisUploadRepository(UploadRepository):
    """Keys: `<prefix>upload:<id>` (hash), `<prefix>upload:<id>:lock`, `<prefix>uploads:expiry`."""

    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix
        self._index = f"{prefix}uploads:expiry"

    def _key(self, upload_id: str) -> str:
        return f"{self.prefix}upload:{upload_id}"

    @guard
    def add(self, upload: Upload) -> None:
        key = self._key(upload.id)
        pipe = self.client.pipeline()
        pipe.hset(
            key,
            mapping={
                "owner_id": upload.owner_id,
                "length": upload.length,
                "offset": upload.offset,
                "handle": upload.handle,
                "filename": upload.filename,
                "options": json.dumps(upload.options),
                "expires_at": repr(upload.expires_at),
                "job_id": upload.job_id or "",
            },
        )
        pipe.expireat(key, int(upload.expires_at) + GRACE_SECONDS)
        pipe.zadd(self._index, {upload.id: upload.expires_at})
        pipe.execute()

    @guard
    def get(self, upload_id: str) -> Upload | None:
        raw = cast(dict[bytes, bytes], self.client.hgetall(self._key(upload_id)))
        if not raw:
            return None
        row = {k.decode(): v.decode() for k, v in raw.items()}
        return Upload(
            id=upload_id,
            owner_id=int(row["owner_id"]),
            length=int(row["length"]),
            offset=int(row["offset"]),
            handle=row["handle"],
            filename=row["filename"],
            options=json.loads(row["options"]),
            expires_at=float(row["expires_at"]),
            job_id=row.get("job_id") or None,
        )

    @guard
    def update(self, upload_id: str, changes: dict[str, Any]) -> None:
        key = self._key(upload_id)
        mapping = {
            name: repr(value) if name == "expires_at" else ("" if value is None else value)
            for name, value in changes.items()
        }
        pipe = self.client.pipeline()
        pipe.hset(key, mapping=mapping)
        if "expires_at" in changes:
            pipe.expireat(key, int(changes["expires_at"]) + GRACE_SECONDS)
            pipe.zadd(self._index, {upload_id: changes["expires_at"]})
        pipe.execute()

    @guard
    def delete(self, upload_id: str) -> bool:
        pipe = self.client.pipeline()
        pipe.delete(self._key(upload_id))
        pipe.zrem(self._index, upload_id)
        return bool(pipe.execute()[0])

    @guard
    def expired(self, now: float) -> list[str]:
        return [
            member.decode()
            for member in cast(
                list[bytes], self.client.zrangebyscore(self._index, "-inf", f"({now}")
            )
        ]

    @contextmanager
    def lock(self, upload_id: str, ttl: float) -> Iterator[RedisLease | None]:
        lock = self.client.lock(f"{self._key(upload_id)}:lock", timeout=ttl, blocking=False)
        if not guard(lock.acquire)():
            yield None
            return
        try:
            yield RedisLease(lock, ttl)
        finally:
            try:
                guard(lock.release)()
            except LockError:  # it expired while we held it: nothing left to release
                pass
