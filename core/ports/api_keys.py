"""API keys: their records, found by the public prefix of a key."""

from __future__ import annotations

import abc
from datetime import datetime

from core.domain.api_keys import ApiKey, KeyHolder


class ApiKeyRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, key: ApiKey) -> ApiKey:
        """Insert a key; Conflict when its prefix is taken."""

    @abc.abstractmethod
    def get(self, key_id: str) -> ApiKey | None: ...

    @abc.abstractmethod
    def find(self, prefix: str) -> KeyHolder | None:
        """The key with this prefix and its owner's role, in one indexed query."""

    @abc.abstractmethod
    def list(self, owner_id: int) -> list[ApiKey]:
        """The owner's keys, oldest first."""

    @abc.abstractmethod
    def count(self, owner_id: int) -> int: ...

    @abc.abstractmethod
    def delete(self, key_id: str) -> bool: ...

    @abc.abstractmethod
    def touch(self, key_id: str, now: datetime, every_seconds: int) -> None:
        """Set last_used_at to now unless it is already within every_seconds of now."""
