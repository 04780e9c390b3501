"""Idempotency-Key (the IETF httpapi draft) for the requests that create something: a retry
of the same request by the same user returns what the first one made; a different request
with the key is refused."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Iterator, Mapping

from core.domain.accounts import Principal
from core.domain.errors import Conflict, DomainError, InvalidInput
from core.ports.limits import IdempotencyStore

IDEMPOTENCY_TTL = 24 * 3600  # a key is remembered this long after its request succeeded
RECEIVING_TTL = 6 * 3600  # a reservation outlives the slowest upload, not a crash


class IdempotencyKeys:
    """Reserve a key while its request is received, then remember the request's fingerprint
    and what it made (`job_id`, `upload_id`), or release the key when the request failed."""

    def __init__(self, store: IdempotencyStore):
        self.store = store

    def reserve(self, actor: Principal, key: str) -> dict[str, Any] | None:
        """None when the key is new (it is now reserved), else what an earlier request made
        with it. Conflict (409) while that request is still being received."""
        if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
            raise DomainError("Idempotency-Key must be 1 to 255 printable ASCII characters")
        prior = self.store.reserve(actor.user_id, key, RECEIVING_TTL)
        if prior is not None and prior.get("pending"):
            raise Conflict("a request with this Idempotency-Key is still being received")
        return prior

    def remember(self, actor: Principal, key: str, fingerprint: str, **made: str) -> None:
        """The request holding the key succeeded: a retry gets what it made."""
        self.store.complete(
            actor.user_id, key, {"fingerprint": fingerprint, **made}, IDEMPOTENCY_TTL
        )

    def release(self, actor: Principal, key: str) -> None:
        """The request holding the key failed: a retry starts afresh."""
        self.store.release(actor.user_id, key)

    @staticmethod
    def check_same(prior: Mapping[str, object], fingerprint: str) -> None:
        """InvalidInput (422) when a retry is not the request the key was first used for."""
        if prior.get("fingerprint") != fingerprint:
            raise InvalidInput("this Idempotency-Key was used for a different request")


class Fingerprint:
    """sha256 of a request's bytes and its options, computed while the bytes stream past."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def feed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._hash.update(chunk)
            yield chunk

    def feed_bytes(self, data: bytes) -> None:
        self._hash.update(data)

    def digest(self, options: Mapping[str, object]) -> str:
        final = self._hash.copy()
        final.update(b"\0" + json.dumps(dict(options), sort_keys=True).encode())
        return final.hexdigest()
