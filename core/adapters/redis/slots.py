"""Counting semaphores in Redis: a sorted set per key, `<prefix>slots:<key>`, whose members
are the holders' tokens scored by when each slot frees itself.

Hand-written because neither `limits` (rates, not holders) nor redis-py's Lock (one holder)
counts holders; this is the expiring-member sorted set of "Redis in Action" (6.3), in one
script so that checking every key and taking a slot of each is one atomic step, timed by the
Redis server's clock rather than each process's. Used for webhook deliveries in flight (per
receiver and per owner) and for a user's uploads being received."""

from __future__ import annotations

import uuid

import redis

from core.adapters.redis.client import guard
from core.ports.limits import Slots

_NOW_MS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""

# KEYS: the semaphores. ARGV: token, ttl in ms, then each key's limit.
_ACQUIRE = (
    _NOW_MS
    + """
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
)

# KEYS: the semaphores the token holds. ARGV: token, ttl in ms. 0 when any slot was lost.
_RENEW = (
    _NOW_MS
    + """
local ttl = tonumber(ARGV[2])
local held = 1
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now_ms)
  if redis.call('ZSCORE', key, ARGV[1]) == false then
    held = 0
  else
    redis.call('ZADD', key, now_ms + ttl, ARGV[1])
    if redis.call('PTTL', key) < ttl then
      redis.call('PEXPIRE', key, ttl)
    end
  end
end
return held
"""
)


class RedisSlots(Slots):
    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    def _key(self, key: str) -> str:
        return f"{self.prefix}slots:{key}"

    @guard
    def acquire(self, limits: dict[str, int], ttl: float) -> str | None:
        token = uuid.uuid4().hex
        keys = [self._key(key) for key in limits]
        taken = self._acquire(keys=keys, args=[token, _ms(ttl), *[int(n) for n in limits.values()]])
        return token if taken == 1 else None

    @guard
    def renew(self, keys: list[str], token: str, ttl: float) -> bool:
        held = self._renew(keys=[self._key(key) for key in keys], args=[token, _ms(ttl)])
        return bool(held == 1)

    @guard
    def release(self, keys: list[str], token: str) -> None:
        with self.client.pipeline() as pipe:
            for key in keys:
                pipe.zrem(self._key(key), token)
            pipe.execute()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
