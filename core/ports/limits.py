"""Limits shared by every process: event rates, counted slots, and the Idempotency-Keys
of requests being received."""

from __future__ import annotations

import abc
from typing import Any


class RateLimiter(abc.ABC):
    """Counts events per key against a rate of `amount` per `seconds`."""

    @abc.abstractmethod
    def hit(self, amount: int, seconds: int, key: str) -> int:
        """Count one event; 0 when it fits the rate, else seconds until one would."""

    @abc.abstractmethod
    def retry_after(self, amount: int, seconds: int, key: str) -> int:
        """0 when another event fits the rate now, else seconds until one would."""

    @abc.abstractmethod
    def reset(self, amount: int, seconds: int, key: str) -> None: ...


class Slots(abc.ABC):
    """Counting semaphores shared by every process: at most `limit` holders of a key at once
    (webhook deliveries in flight per receiver and per owner; a user's uploads being
    received). A slot its holder never releases (a killed process) frees itself after its
    ttl; a holder working longer renews it."""

    @abc.abstractmethod
    def acquire(self, limits: dict[str, int], ttl: float) -> str | None:
        """A token holding one slot of every key at once, or None, taking nothing, when any
        key already has its limit of holders."""

    @abc.abstractmethod
    def renew(self, keys: list[str], token: str, ttl: float) -> bool:
        """Hold the token's slots for another ttl; False when one had already freed itself."""

    @abc.abstractmethod
    def release(self, keys: list[str], token: str) -> None: ...


class IdempotencyStore(abc.ABC):
    """What each Idempotency-Key of a user was used for: reserved while its request is being
    received, then the request's fingerprint and the job it made."""

    @abc.abstractmethod
    def reserve(self, owner_id: int, key: str, ttl: int) -> dict[str, Any] | None:
        """Reserve the key for a request now being received: None when this call reserved it,
        else what the key holds ({"pending": true} or {"fingerprint", "job_id"})."""

    @abc.abstractmethod
    def complete(self, owner_id: int, key: str, record: dict[str, Any], ttl: int) -> None:
        """Replace the reservation with what the request made."""

    @abc.abstractmethod
    def release(self, owner_id: int, key: str) -> None:
        """Forget a reservation whose request failed, so a retry starts afresh."""
