"""The addresses each account signed in from lately, in Redis."""

from __future__ import annotations

import time
from typing import Callable, cast

import redis

from core.adapters.redis.client import guard
from core.ports.accounts import KnownAddresses

KEEP_SECONDS = 30 * 24 * 3600  # an address is known for 30 days after its last sign-in
KEEP_ADDRESSES = 10  # the most recent ones per account


class RedisKnownAddresses(KnownAddresses):
    """`<prefix>known-addresses:<user>`: a sorted set of addresses scored by the time of their
    last successful sign-in, trimmed to the newest KEEP_ADDRESSES and to KEEP_SECONDS."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "vid2mp3:",
        clock: Callable[[], float] = time.time,
    ):
        self.client = client
        self.prefix = prefix
        self.clock = clock

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}known-addresses:{int(user_id)}"

    @guard
    def remember(self, user_id: int, address: str) -> None:
        key, now = self._key(user_id), self.clock()
        with self.client.pipeline() as pipe:
            pipe.zadd(key, {address: now})
            pipe.zremrangebyscore(key, "-inf", now - KEEP_SECONDS)
            pipe.zremrangebyrank(key, 0, -KEEP_ADDRESSES - 1)
            pipe.expire(key, KEEP_SECONDS)
            pipe.execute()

    @guard
    def knows(self, user_id: int, address: str) -> bool:
        seen = cast(float | None, self.client.zscore(self._key(user_id), address))
        return seen is not None and seen > self.clock() - KEEP_SECONDS

    @guard
    def forget(self, user_id: int) -> None:
        self.client.delete(self._key(user_id))
