"""Accounts: their records, the token state cache, and the addresses each signed in from."""

from __future__ import annotations

import abc
from typing import Any

from core.domain.accounts import NewUser, User

# User columns `UserRepository.update` changes: the email changes only through confirm_email,
# once its owner confirmed it.
USER_FIELDS_UPDATABLE = frozenset(
    {"name", "phone", "role", "password_hash", "token_version", "pending_email"}
)


class UserRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, user: NewUser) -> User:
        """Insert a user; raises Conflict when the name or email is taken."""

    @abc.abstractmethod
    def get(self, user_id: int) -> User | None: ...

    @abc.abstractmethod
    def get_by_email(self, email: str) -> User | None: ...

    @abc.abstractmethod
    def get_by_name(self, name: str) -> User | None: ...

    @abc.abstractmethod
    def list(self, offset: int, limit: int) -> tuple[list[User], int]:
        """One page of users ordered by id, and the total count."""

    @abc.abstractmethod
    def update(self, user_id: int, changes: dict[str, Any]) -> User | None:
        """Apply column changes (never the email: see confirm_email); Conflict on a taken
        name."""

    @abc.abstractmethod
    def confirm_email(self, user_id: int, address: str) -> bool:
        """Make `address` the user's confirmed email, if it is still their pending one or
        their unconfirmed one; False otherwise. Conflict when another user has it."""

    @abc.abstractmethod
    def delete(self, user_id: int) -> bool: ...


class KnownAddresses(abc.ABC):
    """The client addresses each account signed in from lately (the login throttle lets them
    past the per-account cap)."""

    @abc.abstractmethod
    def remember(self, user_id: int, address: str) -> None: ...

    @abc.abstractmethod
    def knows(self, user_id: int, address: str) -> bool: ...

    @abc.abstractmethod
    def forget(self, user_id: int) -> None:
        """Drop every address of the account (its password changed, or it was deleted)."""


TokenState = tuple[int, str]  # (token_version, role) of a user


class TokenStates(abc.ABC):
    """A shared cache of each user's token state, so checking a token needs no SQL.
    `None` records a deleted user."""

    @abc.abstractmethod
    def get(self, user_id: int) -> tuple[bool, TokenState | None]:
        """(found, state); found is False on a miss."""

    @abc.abstractmethod
    def offer(self, user_id: int, state: TokenState | None) -> None:
        """Cache a state read from the repository, unless one is cached already."""

    @abc.abstractmethod
    def publish(self, user_id: int, state: TokenState | None) -> None:
        """Record a state that just changed, replacing whatever is cached."""
