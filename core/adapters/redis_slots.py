"""Counted slots with leases in Redis: at most `limit` holders of a key at once, across every
process of the API. A holder renews its lease while it works; a process that dies frees its
slots when their leases run out."""

from __future__ import annotations

import time
import uuid
from typing import cast

import redis

from core.adapters.redis_items import guard
from core.ports import Slots

# One sorted set per key: members are holders, scores the end of their lease. Expired
# holders are dropped before counting, so a crashed holder never keeps its slot.
_ACQUIRE = """#!lua
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

_RENEW = """#!lua
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class RedisSlots(Slots):
    """Keys are `<prefix>slots:<name>`."""

    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:"):
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    def _key(self, name: str) -> str:
        return f"{self.prefix}slots:{name}"

    @guard
    def acquire(self, name: str, limit: int, lease_seconds: float) -> str | None:
        holder = uuid.uuid4().hex
        now = time.time()
        taken = self._acquire(
            keys=[self._key(name)],
            args=[repr(now), limit, repr(now + lease_seconds), holder, int(lease_seconds) + 1],
        )
        return holder if cast(int, taken) else None

    @guard
    def renew(self, name: str, holder: str, lease_seconds: float) -> bool:
        until = time.time() + lease_seconds
        renewed = self._renew(
            keys=[self._key(name)], args=[repr(until), holder, int(lease_seconds) + 1]
        )
        return bool(renewed)

    @guard
    def release(self, name: str, holder: str) -> None:
        self.client.zrem(self._key(name), holder)
