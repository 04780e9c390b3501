"""Expiring download links: a job id, its MP3's id and an expiry, signed with itsdangerous."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from core.domain.errors import Gone, NotFound

MIN_EXPIRES_IN, MAX_EXPIRES_IN, DEFAULT_EXPIRES_IN = 60, 7 * 24 * 3600, 24 * 3600


@dataclass(frozen=True)
class LinkClaim:
    job_id: str
    mp3_fid: str
    expires_at: int  # epoch seconds


class LinkSigner:
    """Signs and checks link tokens; `clock` (epoch seconds) is injectable for tests."""

    def __init__(self, secret: str, base_url: str, clock: Callable[[], float] = time.time):
        # The salt keeps these signatures apart from anything else signed with the secret.
        self._serializer = URLSafeSerializer(secret, salt="vid2mp3.download-link")
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    def sign(self, job_id: str, mp3_fid: str, expires_in: int) -> tuple[str, int]:
        """An absolute URL downloading the MP3 without a token, and its expiry (epoch s)."""
        expires_at = int(self.clock()) + int(expires_in)
        token = self._serializer.dumps([job_id, mp3_fid, expires_at])
        return f"{self.base_url}/links/{token}", expires_at

    def check(self, token: str) -> LinkClaim:
        """The claim of a valid token; NotFound when tampered with, Gone when expired."""
        try:
            job_id, mp3_fid, expires_at = self._serializer.loads(token)
        except (BadSignature, ValueError, TypeError):
            raise NotFound("no such link") from None
        if (
            not isinstance(job_id, str)
            or not isinstance(mp3_fid, str)
            or not isinstance(expires_at, int)
        ):
            raise NotFound("no such link")
        if self.clock() >= expires_at:
            raise Gone("this link has expired")
        return LinkClaim(job_id, mp3_fid, expires_at)
