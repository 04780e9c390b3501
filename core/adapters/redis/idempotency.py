"""Idempotency-Key records in Redis: `<prefix>idempotency:<user>:<sha256 of the key>`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis

from core.adapters.redis.client import guard
from core.ports.limits import IdempotencyStore

PENDING = {"pending": True}


class RedisIdempotencyStore(IdempotencyStore):
    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix

    def _key(self, owner_id: int, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}idempotency:{int(owner_id)}:{digest}"

    @guard
    def reserve(self, owner_id: int, key: str, ttl: int) -> dict[str, Any] | None:
        name = self._key(owner_id, key)
        if self.client.set(name, json.dumps(PENDING), nx=True, ex=ttl):
            return None
        raw = self.client.get(name)
        if raw is None:  # expired between the two calls: try once more
            return (
                None
                if self.client.set(name, json.dumps(PENDING), nx=True, ex=ttl)
                else dict(PENDING)
            )
        value: dict[str, Any] = json.loads(raw)  # type: ignore[arg-type]
        return value

    @guard
    def complete(self, owner_id: int, key: str, record: dict[str, Any], ttl: int) -> None:
        self.client.set(self._key(owner_id, key), json.dumps(record), ex=ttl)

    @guard
    def release(self, owner_id: int, key: str) -> None:
        self.client.delete(self._key(owner_id, key))
