"""The Redis client every Redis adapter uses, and the guard that turns its outages into
Unavailable."""

from __future__ import annotations

import functools
from typing import Callable, ParamSpec, TypeVar

import redis

from core.domain.errors import Unavailable

_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# maxmemory reached with noeviction: writes are refused until memory is freed. A client
# should retry later, as for an outage; it is not a bug of the request (a 500).
_FULL = redis.exceptions.OutOfMemoryError


def redis_client(url: str, timeout: float = 2.0, health_check_seconds: int = 30) -> redis.Redis:
    """A client that connects on first command (redis-py pools are fork-aware). A silent
    server (packets dropped, no reset) fails a command after `timeout` seconds; TCP keepalive
    and the health check find a dead idle connection before a command waits on it."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=health_check_seconds,
        decode_responses=False,
    )


P = ParamSpec("P")
R = TypeVar("R")


def guard(method: Callable[P, R]) -> Callable[P, R]:
    """Turns a lost Redis connection, or a Redis out of memory, into Unavailable('redis')."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except _DOWN as exc:
            raise Unavailable("redis") from exc
        except _FULL as exc:
            raise Unavailable("redis", "the service's storage is full; try again later") from exc

    return wrapper
