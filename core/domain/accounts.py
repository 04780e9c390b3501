"""Accounts: users, their roles, the caller of a request, and the emails about an account."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Role(str, enum.Enum):
    USER = "user"
    ADMIN = "admin"


@dataclass
class User:
    id: int
    name: str
    email: str
    role: Role
    password_hash: str
    phone: str | None = None
    token_version: int = 0
    created_at: datetime | None = None
    # An address asked for and not yet confirmed through the signed link sent to it.
    pending_email: str | None = None
    # False for a sign-up whose address was never confirmed: nothing but the confirmation is
    # sent to it.
    email_confirmed: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass
class NewUser:
    name: str
    email: str
    password_hash: str
    role: Role = Role.USER
    phone: str | None = None
    email_confirmed: bool = True


class AccountEmail(str, enum.Enum):
    """The emails about an account itself; none carries text the user chose."""

    CONFIRM = "confirm-email"  # to the address to confirm: the signed link
    EMAIL_CHANGED = "email-changed"  # to the old address, once the new one is confirmed
    PASSWORD_CHANGED = "password-changed"  # to the account's address


@dataclass
class Principal:
    """The authenticated caller of a request, as read from a valid token or API key."""

    user_id: int
    role: Role
    # The scopes of the API key the request came with; None for a signed-in session (a JWT),
    # which may do whatever the role allows.
    scopes: frozenset[str] | None = None
    key_id: str | None = None

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_access(self, owner_id: int) -> bool:
        return self.is_admin or self.user_id == owner_id
