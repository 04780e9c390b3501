"""Passwords (argon2id), access tokens (JWT HS256) and login."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import argon2
import jwt

from core.domain import Principal, Role, TooManyRequests, Unauthorized, Unavailable, User
from core.ports import RateLimiter, TokenState, TokenStates, UserRepository

log = logging.getLogger(__name__)

JWT_ALGORITHM = "HS256"


class Passwords:
    """Hashes and checks passwords with argon2id; never stores or returns the plain text."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None):
        self._hasher = hasher or argon2.PasswordHasher(type=argon2.Type.ID)
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password; with no hash, spend the same time and fail (no user enumeration)."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash("not-a-real-password")
            password_hash = self._dummy_hash
            password = password + "\0"
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


class Tokens:
    """Issues and checks HS256 access tokens carrying sub, role, ver, iat and exp."""

    def __init__(self, secret: str, ttl_seconds: int):
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        # A token's signature never changes: verify each distinct token once per process.
        self._verified = functools.lru_cache(maxsize=4096)(self._verify)

    def issue(self, user: User, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": str(user.id),
            "role": user.role.value,
            "ver": user.token_version,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def decode(self, token: str, now: float | None = None) -> dict[str, Any]:
        """The token's claims; Unauthorized when forged, expired, malformed or unsigned."""
        claims = self._verified(token)
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= (
            time.time() if now is None else now
        ):
            raise Unauthorized("token expired")
        return dict(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["sub", "role", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None


class LoginThrottle:
    """Limits failed logins per account-and-address and per address within a window.

    An attacker's failures never lock the owner out: they count against the attacker's own
    address, and a right password from any other address still logs in."""

    def __init__(self, limiter: RateLimiter, per_account: int, per_address: int, window: int):
        self.limiter = limiter
        self.per_account = per_account
        self.per_address = per_address
        self.window = window

    def _rates(self, email: str, address: str | None) -> list[tuple[int, str]]:
        where = address or "unknown"
        return [(self.per_account, f"login:{where}:{email}"), (self.per_address, f"login:{where}")]

    def check(self, email: str, address: str | None) -> None:
        for amount, key in self._rates(email, address):
            retry = self.limiter.retry_after(amount, self.window, key)
            if retry:
                raise TooManyRequests("too many failed logins; try again later", retry)

    def failed(self, email: str, address: str | None) -> None:
        for amount, key in self._rates(email, address):
            self.limiter.hit(amount, self.window, key)

    def succeeded(self, email: str, address: str | None) -> None:
        amount, key = self._rates(email, address)[0]
        self.limiter.reset(amount, self.window, key)


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        passwords: Passwords,
        tokens: Tokens,
        throttle: LoginThrottle | None = None,
        states: TokenStates | None = None,
    ):
        self.users = users
        self.passwords = passwords
        self.tokens = tokens
        self.throttle = throttle
        self.states = states

    def login(self, email: str, password: str, address: str | None = None) -> dict[str, Any]:
        """An access token for valid credentials; Unauthorized otherwise, same for every cause.
        Too many failures for this account from this address, or from this address for any
        account -> TooManyRequests."""
        email = (email or "").strip().lower()
        if self.throttle:
            self.throttle.check(email, address)
        user = self.users.get_by_email(email) if email else None
        if not self.passwords.verify(user.password_hash if user else None, password or ""):
            if self.throttle:
                self.throttle.failed(email, address)
            raise Unauthorized("invalid email or password")
        assert user is not None
        if self.throttle:
            self.throttle.succeeded(email, address)
        return {
            "access_token": self.tokens.issue(user),
            "token_type": "Bearer",
            "expires_in": self.tokens.ttl_seconds,
        }

    def claims(self, token: str) -> dict[str, Any]:
        """Claims of a token that is well signed, unexpired and still current for its user."""
        claims = self.tokens.decode(token)
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError):
            raise Unauthorized("invalid token") from None
        # A deleted user, a password change or a role change retires every earlier token.
        if (claims.get("ver", 0), claims["role"]) != self._token_state(user_id):
            raise Unauthorized("token revoked")
        return claims

    def _token_state(self, user_id: int) -> TokenState | None:
        """The user's current (token_version, role), or None when deleted; cached if possible."""
        if self.states is not None:
            try:
                found, state = self.states.get(user_id)
                if found:
                    return state
            except Unavailable:
                log.warning("token state cache unavailable; reading MySQL")
        user = self.users.get(user_id)
        state = (user.token_version, user.role.value) if user else None
        if self.states is not None:
            try:
                self.states.offer(user_id, state)
            except Unavailable:
                pass
        return state

    def publish_state(self, user_id: int, user: User | None) -> None:
        """Tell the cache that a user's tokens changed (new password or role, or deleted)."""
        if self.states is None:
            return
        try:
            self.states.publish(user_id, (user.token_version, user.role.value) if user else None)
        except Unavailable:
            log.warning(
                "could not publish the token state of user %s; earlier tokens stay "
                "valid until the cached state expires",
                user_id,
            )

    def authenticate(self, token: str) -> Principal:
        claims = self.claims(token)
        return Principal(user_id=int(claims["sub"]), role=Role(claims["role"]))
