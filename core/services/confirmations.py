"""Email confirmation links: a user id, the address to confirm and an expiry, signed with
itsdangerous. The link opens the web page, which sends the token with the account's own
session: holding the mailbox alone confirms nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

from itsdangerous import BadSignature, URLSafeSerializer

from core.domain.errors import Gone, NotFound

CONFIRM_TTL_SECONDS = 24 * 3600


class EmailConfirmations:
    """Signs and checks confirmation tokens; `clock` (epoch seconds) is injectable for tests."""

    def __init__(
        self,
        secret: str,
        base_url: str,
        ttl_seconds: int = CONFIRM_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        # Its own salt: a download link's token can never pass for a confirmation, nor back.
        self._serializer = URLSafeSerializer(secret, salt="vid2mp3.confirm-email")
        self.base_url = base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def sign(self, user_id: int, address: str) -> str:
        return self._serializer.dumps([int(user_id), address, int(self.clock()) + self.ttl_seconds])

    def link(self, user_id: int, address: str) -> str:
        """The page's URL with the token in the fragment, which browsers never send to a server
        (so it stays out of access logs and Referer headers)."""
        return f"{self.base_url}/app/#confirm-email={self.sign(user_id, address)}"

    def check(self, token: str) -> tuple[int, str]:
        """(user id, address) of a valid token; NotFound when tampered with, Gone when expired."""
        try:
            user_id, address, expires_at = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError):
            raise NotFound("no such confirmation") from None
        if not (
            isinstance(user_id, int) and isinstance(address, str) and isinstance(expires_at, int)
        ):
            raise NotFound("no such confirmation")
        if self.clock() >= expires_at:
            raise Gone("this confirmation link has expired; ask for a new one")
        return user_id, address
