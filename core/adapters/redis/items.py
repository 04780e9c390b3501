"""TTL items and the hit counter in Redis."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis

from core.adapters.redis.client import guard
from core.domain.errors import Unavailable
from core.ports.items import ItemPut, ItemQuota, ItemStore

# Each owner's items: `item:<owner>:<key>` (the JSON), `item-index:<owner>` (a sorted set of
# keys by expiry) and `item-sizes:<owner>` (a hash: bytes of each key, and their TOTAL). For
# all owners together: `items-expiry` (a sorted set of "<owner>:<key>" by expiry) and
# `items-bytes` (their total), so expired items give their bytes back even when their owner
# never comes back. The scripts keep these in step, and check the quotas and write in one
# atomic step. `#!lua` (Redis 7) makes Redis refuse the put script whole when maxmemory is
# reached, instead of failing at its first write with the bookkeeping half done; the delete
# script may run then, since it frees memory.
TOTAL = " total"  # never an item key: keys have no spaces
ITEM_OVERHEAD = 100  # bytes Redis spends on an item's entries beyond its JSON and key
PURGE_BATCH = 100  # expired items of other owners forgotten per put

_FORGET = """
local function forget(prefix, owner, key, all_expiry, all_bytes, total)
  local sizes = prefix .. 'item-sizes:' .. owner
  local size = tonumber(redis.call('HGET', sizes, key) or '0')
  if size > 0 then
    redis.call('HDEL', sizes, key)
    redis.call('HINCRBY', sizes, total, -size)
    redis.call('DECRBY', all_bytes, size)
  end
  redis.call('ZREM', prefix .. 'item-index:' .. owner, key)
  redis.call('ZREM', all_expiry, owner .. ':' .. key)
end
"""

_PUT = (
    "#!lua\n"
    + _FORGET
    + """
local item, index, sizes, all_expiry, all_bytes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local payload, ttl, expires, now = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local owner, member, prefix, total = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local max_items, max_bytes, max_all = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local due = redis.call('ZRANGEBYSCORE', all_expiry, '-inf', now, 'LIMIT', 0, tonumber(ARGV[13]))
for _, entry in ipairs(due) do
  local sep = string.find(entry, ':', 1, true)
  forget(prefix, string.sub(entry, 1, sep - 1), string.sub(entry, sep + 1), all_expiry,
         all_bytes, total)
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now)) do
  forget(prefix, owner, key, all_expiry, all_bytes, total)
end
local size = string.len(payload) + string.len(member) + tonumber(ARGV[12])
local old = tonumber(redis.call('HGET', sizes, member) or '0')
local exists = redis.call('ZSCORE', index, member)
local count = redis.call('ZCARD', index)
local used = tonumber(redis.call('HGET', sizes, total) or '0')
if not exists and max_items >= 0 and count >= max_items then
  return {'items', count, used}
end
if max_bytes >= 0 and used - old + size > max_bytes then
  return {'bytes', count, used}
end
if max_all >= 0 and tonumber(redis.call('GET', all_bytes) or '0') - old + size > max_all then
  return {'full', count, used}
end
redis.call('SET', item, payload, 'EX', ttl)
redis.call('ZADD', index, expires, member)
redis.call('HSET', sizes, member, size)
redis.call('HINCRBY', sizes, total, size - old)
redis.call('ZADD', all_expiry, expires, owner .. ':' .. member)
redis.call('INCRBY', all_bytes, size - old)
for _, key in ipairs({index, sizes}) do
  if redis.call('TTL', key) < ttl + 1 then redis.call('EXPIRE', key, ttl + 1) end
end
if exists then return {'replaced', count, used} end
return {'created', count, used}
"""
)

_DELETE = (
    "#!lua flags=allow-oom\n"
    + _FORGET
    + """
local removed = redis.call('DEL', KEYS[1])
forget(ARGV[1], ARGV[2], ARGV[3], KEYS[4], KEYS[5], ARGV[4])
return removed
"""
)


def _or_unlimited(limit: int | None) -> int:
    return -1 if limit is None else limit


class RedisItemStore(ItemStore):
    """Keys are `<prefix>item:<owner>:<key>`: owners never share a key space. Per owner, a
    sorted set of keys by expiry counts the items, a hash of their sizes counts the bytes;
    `total_bytes` caps what all owners' items take together (None: no cap)."""

    def __init__(
        self, client: redis.Redis, prefix: str = "vid2mp3:", total_bytes: int | None = None
    ):
        self.client = client
        self.prefix = prefix
        self.total_bytes = total_bytes
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)

    def _key(self, owner_id: int, key: str) -> str:
        return f"{self.prefix}item:{int(owner_id)}:{key}"

    def _keys(self, owner_id: int, key: str) -> list[str]:
        owner = int(owner_id)
        return [
            self._key(owner, key),
            f"{self.prefix}item-index:{owner}",
            f"{self.prefix}item-sizes:{owner}",
            f"{self.prefix}items-expiry",
            f"{self.prefix}items-bytes",
        ]

    # The stored JSON is {"v": value, "exp": epoch seconds}: Redis expires the key at the same
    # moment, and one GET answers both the value and its remaining TTL.

    @guard
    def put(
        self,
        owner_id: int,
        key: str,
        value: dict[str, Any],
        ttl: int,
        quota: ItemQuota | None = None,
    ) -> ItemPut:
        now = time.time()
        expires = now + ttl
        payload = json.dumps({"v": value, "exp": expires}, separators=(",", ":"))
        outcome, items, used = cast(
            list[Any],
            self._put(
                keys=self._keys(owner_id, key),
                args=[
                    payload,
                    ttl,
                    repr(expires),
                    repr(now),
                    int(owner_id),
                    key,
                    self.prefix,
                    TOTAL,
                    _or_unlimited(quota.items if quota else None),
                    _or_unlimited(quota.bytes if quota else None),
                    _or_unlimited(self.total_bytes),
                    ITEM_OVERHEAD,
                    PURGE_BATCH,
                ],
            ),
        )
        outcome = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        if outcome == "full":
            raise Unavailable("redis", "the service's item storage is full; try again later")
        over = outcome if outcome in ("items", "bytes") else None
        return ItemPut(outcome == "created", over, int(items), int(used))

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
        args: list[str | int] = [self.prefix, int(owner_id), key, TOTAL]
        return bool(self._delete(keys=self._keys(owner_id, key), args=args))

    @guard
    def usage(self, owner_id: int) -> tuple[int, int]:
        _, index, sizes, _, _ = self._keys(owner_id, "")
        now = time.time()
        pipe = self.client.pipeline(transaction=True)
        pipe.zrangebyscore(index, "-inf", "+inf", withscores=True)
        pipe.hgetall(sizes)
        live, sized = pipe.execute()
        alive = [member for member, expires in live if expires > now]
        return len(alive), sum(int(sized.get(member, 0)) for member in alive)

    @guard
    def incr_hits(self) -> int:
        return int(cast(int, self.client.incr(f"{self.prefix}hits")))

    @guard
    def ping(self) -> None:
        self.client.ping()
