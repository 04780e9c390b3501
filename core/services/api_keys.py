"""API keys: made, listed and revoked by their owner (or an admin), and checked per request.

A key is `v2m_<prefix>_<secret>`: the prefix (48 random bits, hex) finds the row with one
indexed query, the secret (32 random bytes) proves the caller holds the key. Only SHA-256 of
the secret is stored. A slow password hash (argon2) protects guessable secrets; these are 256
random bits, which no one can guess or invert from their hash, so a fast hash costs a request
microseconds and loses nothing (GitHub's and Stripe's token schemes make the same choice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Callable

from core.domain.accounts import Principal, Role
from core.domain.api_keys import (
    PREFIX_LENGTH,
    SCOPES,
    SECRET_BYTES,
    ApiKey,
    Scope,
    split_key,
)
from core.domain.errors import Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable
from core.ports.api_keys import ApiKeyRepository
from core.services.auth import LoginThrottle

log = logging.getLogger(__name__)

MAX_KEYS_PER_USER = 50
MAX_EXPIRES_IN = 5 * 365 * 86400
TOUCH_EVERY_SECONDS = 60
# Compared against when no key has the prefix, so a miss costs what a wrong secret does.
_NO_HASH = hashlib.sha256(b"no such key").digest()


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


def _now() -> datetime:
    return datetime.now(UTC)


class ApiKeys:
    def __init__(
        self,
        repo: ApiKeyRepository,
        throttle: LoginThrottle | None = None,
        clock: Callable[[], datetime] = _now,
    ):
        self.repo = repo
        self.throttle = throttle
        self.clock = clock

    # --- for their owner -------------------------------------------------------------------

    def create(
        self, actor: Principal, name: str, scopes: list[str], expires_in: int | None = None
    ) -> tuple[ApiKey, str]:
        """A new key of the caller's and its full text, which is shown only now. A key can
        only make keys with scopes it holds itself."""
        self._require_account(actor)
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise InvalidInput("name: 1 to 100 characters", {"fields": {"name": ["1 to 100"]}})
        chosen = frozenset(scopes)
        unknown = sorted(chosen - set(SCOPES))
        if unknown or not chosen:
            raise InvalidInput(
                "scopes: one or more of " + ", ".join(SCOPES),
                {"fields": {"scopes": [f"each one of {', '.join(SCOPES)}"]}},
            )
        if actor.scopes is not None and not chosen <= actor.scopes:
            raise Forbidden("an API key can only make keys with scopes it holds itself")
        if expires_in is not None and not 60 <= expires_in <= MAX_EXPIRES_IN:
            raise InvalidInput(
                f"expires_in: 60 to {MAX_EXPIRES_IN} seconds",
                {"fields": {"expires_in": [f"60 to {MAX_EXPIRES_IN}"]}},
            )
        if self.repo.count(actor.user_id) >= MAX_KEYS_PER_USER:
            raise InvalidInput(f"at most {MAX_KEYS_PER_USER} API keys per user")
        now = self.clock()
        secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        key = self.repo.add(
            ApiKey(
                id=uuid.uuid4().hex,
                owner_id=actor.user_id,
                name=name,
                prefix=prefix,
                secret_hash=secret_hash(secret),
                scopes=chosen,
                expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            )
        )
        log.info("API key %s (%s) made for user %s", key.id, prefix, actor.user_id)
        return key, f"v2m_{prefix}_{secret}"

    def list(self, actor: Principal, user_id: int | None = None) -> list[ApiKey]:
        """The caller's keys; an admin may name another user."""
        self._require_account(actor)
        owner = actor.user_id if user_id is None else user_id
        if owner != actor.user_id and not actor.is_admin:
            raise Forbidden("only admins list another user's keys")
        return self.repo.list(owner)

    def revoke(self, actor: Principal, key_id: str) -> None:
        """Delete a key: the next request with it is refused. The owner's, or any for admins."""
        self._require_account(actor)
        key = self.repo.get(key_id)
        if key is None or not actor.can_access(key.owner_id):
            raise NotFound("no such API key")
        self.repo.delete(key_id)
        log.info("API key %s (%s) revoked by user %s", key.id, key.prefix, actor.user_id)

    @staticmethod
    def _require_account(actor: Principal) -> None:
        if not actor.allows(Scope.ACCOUNT.value):
            raise Forbidden("this API key lacks the scope 'account'")

    # --- per request -----------------------------------------------------------------------

    def authenticate(self, text: str, address: str | None = None) -> Principal:
        """The caller a key stands for; Unauthorized (with the reason) when it is malformed,
        unknown, wrong, expired or revoked; TooManyRequests after too many failures from the
        caller's address (the failed-login budget: a wrong key counts as a failed login)."""
        if self.throttle:
            self.throttle.check_address(address)
        parts = split_key(text)
        if parts is None:
            self._failed(address)
            raise Unauthorized("malformed API key: expected v2m_<prefix>_<secret>")
        prefix, secret = parts
        holder = self.repo.find(prefix)
        stored = holder.key.secret_hash if holder else _NO_HASH
        if not hmac.compare_digest(stored, secret_hash(secret)) or holder is None:
            self._failed(address)
            raise Unauthorized("invalid API key: unknown or revoked")
        key, now = holder.key, self.clock()
        if key.expired(now):
            raise Unauthorized("API key expired")
        if key.last_used_at is None or now - key.last_used_at >= timedelta(
            seconds=TOUCH_EVERY_SECONDS
        ):
            try:
                self.repo.touch(key.id, now, TOUCH_EVERY_SECONDS)
            except Unavailable:
                log.warning("could not record the use of API key %s", key.id)
        return Principal(key.owner_id, Role(holder.role), scopes=key.scopes, key_id=key.id)

    def _failed(self, address: str | None) -> None:
        if self.throttle:
            self.throttle.failed(address)
