"""TTL items and the hit counter in Redis."""

from __future__ import annotations

import functools
import json
import time
from typing import Any, Callable, ParamSpec, TypeVar, cast

import redis

from core.domain import Unavailable
from core.ports import ItemStore

_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redis_client(url: str, timeout: float = 2.0) -> redis.Redis:
    """A client that connects on first command (redis-py pools are fork-aware)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        decode_responses=False,
    )


P = ParamSpec("P")
R = TypeVar("R")


def guard(method: Callable[P, R]) -> Callable[P, R]:
    """Turns a lost Redis connection into Unavailable('redis')."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except _DOWN as exc:
            raise Unavailable("redis") from exc

    return wrapper


class RedisItemStore(ItemStore):
    """Keys are `<prefix>item:<owner>:<key>`: owners never share a key space. A sorted set per
    owner, `<prefix>item-index:<owner>`, scores each key by its expiry, for counting."""

    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix

    def _key(self, owner_id: int, key: str) -> str:
        return f"{self.prefix}item:{int(owner_id)}:{key}"

    def _index(self, owner_id: int) -> str:
        return f"{self.prefix}item-index:{int(owner_id)}"

    # The stored JSON is {"v": value, "exp": epoch seconds}: Redis expires the key at the same
    # moment, and one GET answers both the value and its remaining TTL.

    @guard
    def put(self, owner_id: int, key: str, value: dict[str, Any], ttl: int) -> bool:
        expires = time.time() + ttl
        payload = json.dumps({"v": value, "exp": expires}, separators=(",", ":"))
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self._key(owner_id, key), payload, ex=ttl, get=True)
        pipe.zadd(self._index(owner_id), {key: expires})
        pipe.expireat(self._index(owner_id), int(expires) + 1, gt=True)
        previous, _, _ = pipe.execute()
        return previous is None

    @guard
    def get(self, owner_id: int, key: str) -> tuple[dict[str, Any], int] | None:
        payload = cast(bytes | None, self.client.get(self._key(owner_id, key)))
        if payload is None:
            return None
        stored = json.loads(payload)
        remaining = int(stored["exp"] - time.time())
        if remaining <= 0:
            return None
        return stored["v"], remaining

    @guard
    def delete(self, owner_id: int, key: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self._key(owner_id, key))
        pipe.zrem(self._index(owner_id), key)
        deleted, _ = pipe.execute()
        return bool(deleted)

    @guard
    def count(self, owner_id: int) -> int:
        pipe = self.client.pipeline(transaction=True)
        pipe.zremrangebyscore(self._index(owner_id), "-inf", time.time())
        pipe.zcard(self._index(owner_id))
        _, count = pipe.execute()
        return int(count)

    @guard
    def incr_hits(self) -> int:
        return int(cast(int, self.client.incr(f"{self.prefix}hits")))

    @guard
    def ping(self) -> None:
        self.client.ping()
