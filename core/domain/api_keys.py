"""API keys: long-lived, scoped, revocable credentials a user makes for a program."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime


class Scope(str, enum.Enum):
    """What a key may do; a signed-in session (a JWT) may do everything its role allows."""

    JOBS_READ = "jobs:read"  # list and read jobs, download MP3s, list upload links
    JOBS_WRITE = "jobs:write"  # upload, cancel, delete, download links, upload links
    WEBHOOKS = "webhooks"  # register, list and delete webhooks, see deliveries
    ITEMS = "items"  # the TTL items
    ACCOUNT = "account"  # profile, password, users (admins), and API keys themselves


SCOPES = tuple(scope.value for scope in Scope)

KEY_MARK = "v2m_"
PREFIX_LENGTH = 12  # lowercase hex: 48 bits, the public part the key is found by
SECRET_BYTES = 32
SECRET_LENGTH = 43  # 32 bytes in unpadded URL-safe base64
_KEY = re.compile(r"v2m_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def looks_like_key(text: str) -> bool:
    """Whether a credential is meant as an API key (rather than a JWT or a password)."""
    return text.startswith(KEY_MARK)


def split_key(text: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = _KEY.fullmatch(text)
    return (match.group(1), match.group(2)) if match else None


@dataclass
class ApiKey:
    id: str
    owner_id: int
    name: str
    prefix: str
    secret_hash: bytes
    scopes: frozenset[str]
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class KeyHolder:
    """A key found by its prefix, with its owner's current role (read in the same query)."""

    key: ApiKey
    role: str
