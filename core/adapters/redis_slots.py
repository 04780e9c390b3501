"""Counting semaphores in Redis: a sorted set per key, `<prefix>slots:<key>`, whose members
are the holders' tokens scored by when each slot frees itself.

Hand-written because neither `limits` (rates, not holders) nor redis-py's Lock (one holder)
counts holders; this is the expiring-member sorted set of "Redis in Action" (6.3), in one
script so that checking every key and taking a slot of each is one atomic step, timed by the
Redis server's clock rather than each worker's."""

from __future__ import annotations

import uuid

import redis

from core.adapters.redis_items import guard
from core.ports import Slots

# KEYS: the semaphores. ARGV: token, ttl in ms, then each key's limit.
_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now_ms + ttl, ARGV[1])
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return 1
"""


class RedisSlots(Slots):
    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)

    def _key(self, key: str) -> str:
        return f"{self.prefix}slots:{key}"

    @guard
    def acquire(self, limits: dict[str, int], ttl: float) -> str | None:
        token = uuid.uuid4().hex
        keys = [self._key(key) for key in limits]
        taken = self._acquire(
            keys=keys, args=[token, max(1, int(ttl * 1000)), *[int(n) for n in limits.values()]]
        )
        return token if taken == 1 else None

    @guard
    def release(self, keys: list[str], token: str) -> None:
        with self.client.pipeline() as pipe:
            for key in keys:
                pipe.zrem(self._key(key), token)
            pipe.execute()
