"""The shared cache of each user's token state, in Redis."""

from __future__ import annotations

import redis

from core.adapters.redis.client import guard
from core.ports.accounts import TokenState, TokenStates


class RedisTokenStates(TokenStates):
    """`<prefix>token-state:<user>` = "<version>:<role>", or "-" for a deleted user."""

    def __init__(self, client: redis.Redis, prefix: str = "vid2mp3:", ttl: int = 300):
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def _key(self, user_id: int) -> str:
        return f"{self.prefix}token-state:{int(user_id)}"

    @staticmethod
    def _encode(state: TokenState | None) -> str:
        return "-" if state is None else f"{state[0]}:{state[1]}"

    @guard
    def get(self, user_id: int) -> tuple[bool, TokenState | None]:
        raw = self.client.get(self._key(user_id))
        if raw is None:
            return False, None
        if raw == b"-":
            return True, None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        version, _, role = text.partition(":")
        return True, (int(version), role)

    @guard
    def offer(self, user_id: int, state: TokenState | None) -> None:
        self.client.set(self._key(user_id), self._encode(state), ex=self.ttl, nx=True)

    @guard
    def publish(self, user_id: int, state: TokenState | None) -> None:
        self.client.set(self._key(user_id), self._encode(state), ex=self.ttl)
