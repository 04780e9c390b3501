"""The RateLimiter port on the `limits` package, with its Redis storage (sliding windows)."""

from __future__ import annotations

import time

import redis
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from core.domain.errors import Unavailable
from core.ports.limits import RateLimiter

_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, StorageError)


class LimitsRateLimiter(RateLimiter):
    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        storage = RedisStorage(
            "redis://",
            connection_pool=client.connection_pool,
            key_prefix=f"{prefix}limits",
            wrap_exceptions=True,
        )
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    def _retry_after(self, item: RateLimitItemPerSecond, key: str) -> int:
        stats = self._limiter.get_window_stats(item, key)
        return 0 if stats.remaining > 0 else max(1, int(stats.reset_time - time.time() + 0.999))

    def hit(self, amount: int, seconds: int, key: str) -> int:
        item = RateLimitItemPerSecond(amount, seconds)
        try:
            if self._limiter.hit(item, key):
                return 0
            return self._retry_after(item, key)
        except _DOWN as exc:
            raise Unavailable("redis") from exc

    def retry_after(self, amount: int, seconds: int, key: str) -> int:
        item = RateLimitItemPerSecond(amount, seconds)
        try:
            if self._limiter.test(item, key):
                return 0
            return self._retry_after(item, key)
        except _DOWN as exc:
            raise Unavailable("redis") from exc

    def reset(self, amount: int, seconds: int, key: str) -> None:
        try:
            self._limiter.clear(RateLimitItemPerSecond(amount, seconds), key)
        except _DOWN as exc:
            raise Unavailable("redis") from exc
