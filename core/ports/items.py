"""The users' TTL items: JSON objects with an expiry, within a quota per owner."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ItemQuota:
    """What one owner's items may take: how many, and how many bytes of the store's memory
    (None: no limit)."""

    items: int | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class ItemPut:
    """What a put did: stored (created: the key was new), or refused because the owner's
    `over` ("items" or "bytes") quota would be exceeded; items and bytes in use before it."""

    created: bool
    over: str | None = None
    items: int = 0
    bytes: int = 0


class ItemStore(abc.ABC):
    """JSON objects with an expiry, kept per owner."""

    @abc.abstractmethod
    def put(
        self,
        owner_id: int,
        key: str,
        value: dict[str, Any],
        ttl: int,
        quota: ItemQuota | None = None,
    ) -> ItemPut:
        """Store, unless the owner's quota would be exceeded: the check and the write are one
        atomic step, so concurrent puts cannot pass the quota together."""

    @abc.abstractmethod
    def get(self, owner_id: int, key: str) -> tuple[dict[str, Any], int] | None:
        """The stored object and its remaining seconds, or None when missing or expired."""

    @abc.abstractmethod
    def delete(self, owner_id: int, key: str) -> bool: ...

    @abc.abstractmethod
    def usage(self, owner_id: int) -> tuple[int, int]:
        """(items, bytes) of the owner's unexpired items, as the quota counts them."""

    @abc.abstractmethod
    def incr_hits(self) -> int: ...

    @abc.abstractmethod
    def ping(self) -> None: ...
