"""Passwords (argon2id), access tokens (JWT HS256) and login."""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
import unicodedata
from typing import Any

import argon2
import jwt

from core.domain.accounts import Principal, Role, User
from core.domain.errors import Forbidden, TooManyRequests, Unauthorized, Unavailable
from core.ports.accounts import KnownAddresses, TokenState, TokenStates, UserRepository
from core.ports.limits import RateLimiter

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


def identifier_key(identifier: str) -> str:
    """A login identifier as the throttle counts it: compatibility forms, accents and case
    folded (NFKD, marks dropped, NFKC, casefold), so spellings that MySQL's collation may take
    for one account share one budget even before, or without, a user being found."""
    text = unicodedata.normalize("NFKD", identifier.strip())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def address_key(address: str | None) -> str:
    """A client address as the throttle counts it: IPv4 as is (also when IPv4-mapped), IPv6
    by its /64, the block one host or one customer holds (privacy addresses rotate inside it)."""
    try:
        parsed = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class LoginThrottle:
    """Limits password guesses, at login and at re-authentication, in a sliding window:

    - per account and client address (`per_account_and_address`);
    - per account from addresses it has not signed in from lately (`per_account`): guesses
      spread over many addresses stop, while the owner still signs in from an address where
      they signed in before (the `known` addresses);
    - per client address across accounts (`per_address`), counting failures only.

    An account is its user id once looked up (every spelling the database matches is one
    account), else the normalised identifier. Guesses at an account are counted before the
    password is checked, so concurrent guesses cannot all pass the check together."""

    def __init__(
        self,
        limiter: RateLimiter,
        per_account_and_address: int,
        per_address: int,
        window: int,
        per_account: int | None = None,
        known: KnownAddresses | None = None,
    ):
        self.limiter = limiter
        self.per_account_and_address = per_account_and_address
        self.per_address = per_address
        self.window = window
        self.per_account = per_account
        self.known = known

    def _refuse_after(self, retry: int) -> None:
        if retry:
            raise TooManyRequests("too many failed logins; try again later", retry)

    def check_address(self, address: str | None) -> None:
        """TooManyRequests when this address failed too often, whatever the account."""
        key = f"login:{address_key(address)}"
        self._refuse_after(self.limiter.retry_after(self.per_address, self.window, key))

    def attempt(self, account: str, address: str | None, user_id: int | None) -> None:
        """Count one guess at `account` from `address`; TooManyRequests when over a limit."""
        where = address_key(address)
        key = f"login:{where}:{account}"
        self._refuse_after(self.limiter.hit(self.per_account_and_address, self.window, key))
        if self.per_account is None:
            return
        if user_id is not None and self.known is not None and self.known.knows(user_id, where):
            return
        key = f"login-account:{account}"
        self._refuse_after(self.limiter.hit(self.per_account, self.window, key))

    def failed(self, address: str | None) -> None:
        self.limiter.hit(self.per_address, self.window, f"login:{address_key(address)}")

    def succeeded(self, account: str, address: str | None, user_id: int) -> None:
        where = address_key(address)
        self.limiter.reset(self.per_account_and_address, self.window, f"login:{where}:{account}")
        if self.known is not None:
            self.known.remember(user_id, where)

    def forget(self, user_id: int, keep: str | None = None) -> None:
        """The account's known addresses no longer count (its password changed), but `keep`,
        from where the owner just proved their password."""
        if self.known is not None:
            self.known.forget(user_id)
            if keep is not None:
                self.known.remember(user_id, address_key(keep))


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
        Too many guesses (see LoginThrottle) -> TooManyRequests."""
        identifier = (email or "").strip()
        if self.throttle:
            self.throttle.check_address(address)
        user = self.users.get_by_email(identifier.lower()) if identifier else None
        if not self._verify(user, identifier, password, address):
            raise Unauthorized("invalid email or password")
        assert user is not None
        return self.session(user)

    def check_password(self, user: User, password: str, address: str | None = None) -> None:
        """Re-authentication before a sensitive change: Forbidden unless `password` is the
        user's, throttled like a login (a stolen token is no unlimited password oracle)."""
        if self.throttle:
            self.throttle.check_address(address)
        if not self._verify(user, user.email, password, address):
            raise Forbidden("current_password is not your password")

    def _verify(
        self, user: User | None, identifier: str, password: str, address: str | None
    ) -> bool:
        account = f"u:{user.id}" if user else f"e:{identifier_key(identifier)}"
        if self.throttle:
            self.throttle.attempt(account, address, user.id if user else None)
        ok = self.passwords.verify(user.password_hash if user else None, password or "")
        if self.throttle:
            if ok and user is not None:
                self.throttle.succeeded(account, address, user.id)
            else:
                self.throttle.failed(address)
        return ok and user is not None

    def session(self, user: User) -> dict[str, Any]:
        """A new access token for the user, as /login answers it."""
        return {
            "access_token": self.tokens.issue(user),
            "token_type": "Bearer",
            "expires_in": self.tokens.ttl_seconds,
        }

    def password_changed(self, user_id: int, address: str | None = None) -> None:
        """The addresses the account signed in from stop counting as the owner's, but the one
        the owner changed it from (`address`; None when an admin changed it)."""
        if not self.throttle:
            return
        try:
            self.throttle.forget(user_id, keep=address)
        except Unavailable:
            log.warning(
                "could not forget the sign-in addresses of user %s; they stay known for up "
                "to 30 days",
                user_id,
            )

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
