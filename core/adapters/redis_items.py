"""TTL items and the hit counter in Redis."""
from __future__ import annotations

import json
import time
from typing import Any, Callable

import redis

from core.domain import Unavailable
from core.ports import ItemStore, RateLimiter, TokenState, TokenStates

_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redis_client(url: str, timeout: float = 2.0) -> redis.Redis:
    """A client that connects on first command (redis-py pools are fork-aware)."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                health_check_interval=30, decode_responses=False)


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except _DOWN as exc:
            raise Unavailable("redis") from exc
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class RedisItemStore(ItemStore):
    """Keys are `<prefix>item:<owner>:<key>`: owners never share a key space."""

    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix

    def _key(self, owner_id: int, key: str) -> str:
        return f"{self.prefix}item:{int(owner_id)}:{key}"

    # The stored JSON is {"v": value, "exp": epoch seconds}: Redis expires the key at the same
    # moment, and one GET answers both the value and its remaining TTL.

    @_guard
    def put(self, owner_id: int, key: str, value: dict[str, Any], ttl: int) -> bool:
        payload = json.dumps({"v": value, "exp": time.time() + ttl}, separators=(",", ":"))
        previous = self.client.set(self._key(owner_id, key), payload, ex=ttl, get=True)
        return previous is None

    @_guard
    def get(self, owner_id: int, key: str) -> tuple[dict[str, Any], int] | None:
        payload = self.client.get(self._key(owner_id, key))
        if payload is None:
            return None
        stored = json.loads(payload)
        remaining = int(stored["exp"] - time.time())
        if remaining <= 0:
            return None
        return stored["v"], remaining

    @_guard
    def delete(self, owner_id: int, key: str) -> bool:
        return bool(self.client.delete(self._key(owner_id, key)))

    @_guard
    def incr_hits(self) -> int:
        return int(self.client.incr(f"{self.prefix}hits"))

    @_guard
    def ping(self) -> None:
        self.client.ping()


class RedisRateLimiter(RateLimiter):
    """Fixed-window counters: INCR, with the expiry set by the first hit only."""

    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}rate:{key}"

    @_guard
    def count(self, key: str) -> tuple[int, int]:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self._key(key))
        pipe.ttl(self._key(key))
        hits, ttl = pipe.execute()
        return (int(hits), max(int(ttl), 1)) if hits is not None else (0, 0)

    @_guard
    def hit(self, key: str, window: int) -> int:
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(self._key(key))
        pipe.expire(self._key(key), window, nx=True)
        hits, _ = pipe.execute()
        return int(hits)

    @_guard
    def reset(self, key: str) -> None:
        self.client.delete(self._key(key))


class RedisTokenStates(TokenStates):
    """`<prefix>token-state:<user>` = "<version>:<role>", or "-" for a deleted user."""

    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:", ttl: int = 300):
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}token-state:{int(user_id)}"

    @staticmethod
    def _encode(state: TokenState | None) -> str:
        return "-" if state is None else f"{state[0]}:{state[1]}"

    @_guard
    def get(self, user_id: int) -> tuple[bool, TokenState | None]:
        raw = self.client.get(self._key(user_id))
        if raw is None:
            return False, None
        if raw == b"-":
            return True, None
        version, _, role = raw.decode().partition(":")
        return True, (int(version), role)

    @_guard
    def offer(self, user_id: int, state: TokenState | None) -> None:
        self.client.set(self._key(user_id), self._encode(state), ex=self.ttl, nx=True)

    @_guard
    def publish(self, user_id: int, state: TokenState | None) -> None:
        self.client.set(self._key(user_id), self._encode(state), ex=self.ttl)
