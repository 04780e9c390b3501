"""User management: create, read, update, delete, list and find by name."""

from __future__ import annotations

import re
from typing import Any, Callable

from core.domain import (
    Conflict,
    Forbidden,
    InvalidInput,
    NewUser,
    NotFound,
    Page,
    Principal,
    Role,
    Unauthorized,
    User,
)
from core.ports import UserRepository
from core.services.auth import Passwords

NAME_RE = re.compile(r"^[^\W_][\w .'-]{0,62}[\w.]$|^[^\W_]$", re.UNICODE)
EMAIL_RE = re.compile(r"^[^@\s\"'<>(),;:\\]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ().-]{3,30}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 256


def _check(fields: dict[str, Any]) -> dict[str, Any]:
    """Normalise the given fields and raise InvalidInput with a message per bad field."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not 1 <= len(name) <= 64 or not NAME_RE.match(name):
            errors["name"] = [
                "1-64 letters, digits, spaces and . _ ' -; starts with a letter or digit"
            ]
        clean["name"] = name
    if "email" in fields:
        email = (fields["email"] or "").strip().lower()
        if len(email) > 254 or not EMAIL_RE.match(email):
            errors["email"] = ["not a valid email address"]
        clean["email"] = email
    if "password" in fields:
        password = fields["password"] or ""
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            errors["password"] = [f"{MIN_PASSWORD}-{MAX_PASSWORD} characters"]
        clean["password"] = password
    if "phone" in fields:
        phone = fields["phone"]
        phone = phone.strip() if isinstance(phone, str) else phone
        if phone and not PHONE_RE.match(phone):
            errors["phone"] = ["digits, spaces, + ( ) . - only; 5-32 characters"]
        clean["phone"] = phone or None
    if "role" in fields:
        try:
            clean["role"] = Role(fields["role"])
        except ValueError:
            errors["role"] = ["one of: user, admin"]
    if errors:
        raise InvalidInput("invalid input", {"fields": errors})
    return clean


class UserService:
    def __init__(
        self,
        users: UserRepository,
        passwords: Passwords,
        open_signup: bool = False,
        before_delete: Callable[[int], None] | None = None,
        tokens_changed: Callable[[int, User | None], None] | None = None,
    ):
        self.users = users
        self.passwords = passwords
        self.open_signup = open_signup
        self.before_delete = before_delete
        self.tokens_changed = tokens_changed

    def create(self, actor: Principal | None, fields: dict[str, Any]) -> User:
        """Create a user; admins may set the role, and anonymous callers only with open sign-up."""
        if actor is None and not self.open_signup:
            raise Unauthorized("sign-up is closed: an admin creates accounts")
        if actor is not None and not actor.is_admin and not self.open_signup:
            raise Forbidden("only admins create accounts")
        missing = [f for f in ("name", "email", "password") if not fields.get(f)]
        if missing:
            raise InvalidInput("invalid input", {"fields": {f: ["required"] for f in missing}})
        if "role" in fields and not (actor and actor.is_admin):
            raise Forbidden("only admins set roles")
        clean = _check(fields)
        return self.users.add(
            NewUser(
                name=clean["name"],
                email=clean["email"],
                phone=clean.get("phone"),
                role=clean.get("role", Role.USER),
                password_hash=self.passwords.hash(clean["password"]),
            )
        )

    def ensure_admin(self, email: str, password: str) -> User:
        """The admin account for these credentials, created if missing (the migration calls it)."""
        clean = _check({"email": email, "password": password})
        existing = self.users.get_by_email(clean["email"])
        if existing:
            return existing
        name = clean["email"].split("@")[0][:64] or "admin"
        if self.users.get_by_name(name):
            name = f"{name}-admin"[:64]
        try:
            return self.users.add(
                NewUser(
                    name=name,
                    email=clean["email"],
                    role=Role.ADMIN,
                    password_hash=self.passwords.hash(clean["password"]),
                )
            )
        except Conflict:  # another process created it at the same moment
            found = self.users.get_by_email(clean["email"])
            if found is None:
                raise
            return found

    def get(self, actor: Principal, user_id: int) -> User:
        """A user the actor may see; others' ids look exactly like missing ones."""
        user = self.users.get(user_id) if actor.can_access(user_id) else None
        if user is None:
            raise NotFound("user not found")
        return user

    def list(self, actor: Principal, page: int, per_page: int) -> Page:
        if not actor.is_admin:
            raise Forbidden("only admins list users")
        users, total = self.users.list((page - 1) * per_page, per_page)
        return Page(users, page, per_page, total)

    def update(self, actor: Principal, user_id: int, fields: dict[str, Any]) -> User:
        user = self.get(actor, user_id)
        if "role" in fields and not actor.is_admin:
            raise Forbidden("only admins change roles")
        clean = _check(fields)
        changes: dict[str, Any] = {k: v for k, v in clean.items() if k != "password"}
        if "role" in changes:
            changes["role"] = changes["role"].value
        if "password" in clean:
            changes["password_hash"] = self.passwords.hash(clean["password"])
        if "password" in clean or ("role" in changes and changes["role"] != user.role.value):
            changes["token_version"] = user.token_version + 1
        if not changes:
            return user
        updated = self.users.update(user_id, changes)
        if updated is None:
            raise NotFound("user not found")
        if "token_version" in changes and self.tokens_changed:
            self.tokens_changed(user_id, updated)
        return updated

    def delete(self, actor: Principal, user_id: int) -> User:
        user = self.get(actor, user_id)
        if self.before_delete:  # e.g. remove the user's jobs and files first
            self.before_delete(user_id)
        self.users.delete(user_id)
        if self.tokens_changed:
            self.tokens_changed(user_id, None)
        return user

    def find_by_name(self, name: str) -> User:
        user = self.users.get_by_name(name.strip()) if name else None
        if user is None:
            raise NotFound("no user with that name")
        return user
