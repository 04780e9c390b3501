"""TTL items: small JSON objects per user with an expiry, and the service hit counter."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from core.domain.errors import InvalidInput, NotFound, QuotaExceeded, TooLarge
from core.ports.items import ItemQuota, ItemStore

KEY_RE = re.compile(r"^[A-Za-z0-9_@:.-]+(/[A-Za-z0-9_@:.-]+)*$")
MAX_KEY_LENGTH = 200
MAX_TTL = 10 * 365 * 24 * 3600
RESERVED = ("last_updated", "ttl")


def check_key(key: str) -> str:
    """Item keys: path-like segments of letters, digits and _ @ : . -; no '..', no globs."""
    if (
        not key
        or len(key) > MAX_KEY_LENGTH
        or not KEY_RE.match(key)
        or any(part in (".", "..") for part in key.split("/"))
    ):
        raise InvalidInput(
            "invalid item key",
            {
                "fields": {
                    "key": [
                        f"1-{MAX_KEY_LENGTH} characters of letters, digits and _ @ : . - "
                        "in /-separated segments; no '.' or '..' segments"
                    ]
                }
            },
        )
    return key


class ItemService:
    def __init__(
        self,
        store: ItemStore,
        default_ttl: int,
        max_bytes: int,
        max_items: int | None = None,
        quota_bytes: int | None = None,
    ):
        self.store = store
        self.default_ttl = default_ttl
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.quota_bytes = quota_bytes

    def put(
        self, owner_id: int, key: str, value: Any, ttl: int | None = None, now: float | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Store an object with last_updated and ttl; returns it and whether it is new."""
        check_key(key)
        if not isinstance(value, dict):
            raise InvalidInput("the item must be a JSON object")
        ttl = self.default_ttl if ttl is None else ttl
        if not 1 <= ttl <= MAX_TTL:
            raise InvalidInput("invalid ttl", {"fields": {"ttl": [f"1-{MAX_TTL} seconds"]}})
        stored = {k: v for k, v in value.items() if k not in RESERVED}
        stored["last_updated"] = int(time.time() if now is None else now)
        if len(json.dumps(stored, separators=(",", ":"))) > self.max_bytes:
            raise TooLarge(f"items are limited to {self.max_bytes} bytes")
        put = self.store.put(
            owner_id, key, stored, ttl, ItemQuota(self.max_items, self.quota_bytes)
        )
        if put.over == "items":
            raise QuotaExceeded(
                f"at most {self.max_items} items per user; delete some first",
                "QUOTA_ITEMS",
                self.max_items or 0,
                put.items,
            )
        if put.over == "bytes":
            raise QuotaExceeded(
                f"your items would take more than {_mib(self.quota_bytes or 0)} MiB; "
                "delete some first",
                "QUOTA_ITEMS_MB",
                self.quota_bytes or 0,
                put.bytes,
            )
        return {**stored, "ttl": ttl}, put.created

    def get(self, owner_id: int, key: str) -> dict[str, Any]:
        check_key(key)
        found = self.store.get(owner_id, key)
        if found is None:
            raise NotFound("no such item")
        value, ttl = found
        return {**value, "ttl": ttl}

    def delete(self, owner_id: int, key: str) -> None:
        check_key(key)
        if not self.store.delete(owner_id, key):
            raise NotFound("no such item")

    def hit(self) -> int:
        return self.store.incr_hits()


def _mib(size: int) -> str:
    return f"{size / 2**20:g}"
