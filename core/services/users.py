"""User management: create, read, update, delete, list and find by name."""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

from core.domain.accounts import AccountEmail, NewUser, Principal, Role, User
from core.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from core.domain.values import Page
from core.ports.accounts import UserRepository
from core.ports.limits import RateLimiter
from core.ports.queue import TaskQueue
from core.services.auth import Passwords, identifier_key
from core.services.confirmations import EmailConfirmations

log = logging.getLogger(__name__)

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


# Confirmation emails one account may ask for, and one address may receive, per window: the
# service must not become a way to flood a mailbox.
CONFIRMATIONS_PER_ACCOUNT = (5, 3600)
CONFIRMATIONS_PER_ADDRESS = (5, 24 * 3600)
NEEDS_PASSWORD = "your current password, to change the password, email or role"


class UserService:
    """Accounts. A password, email or role change needs the caller's current password (an
    admin's own for another account); a new email address waits until its owner confirms the
    signed link sent to it, then the old address is told."""

    def __init__(
        self,
        users: UserRepository,
        passwords: Passwords,
        open_signup: bool = False,
        before_delete: Callable[[int], None] | None = None,
        tokens_changed: Callable[[int, User | None], None] | None = None,
        *,
        confirmations: EmailConfirmations | None = None,
        queue: TaskQueue | None = None,
        limiter: RateLimiter | None = None,
        reauthenticate: Callable[[User, str, str | None], None] | None = None,
        password_changed: Callable[[int, str | None], None] | None = None,
    ):
        self.users = users
        self.passwords = passwords
        self.open_signup = open_signup
        self.before_delete = before_delete
        self.tokens_changed = tokens_changed
        self.confirmations = confirmations
        self.queue = queue
        self.limiter = limiter
        self.reauthenticate = reauthenticate
        self.password_changed = password_changed

    def create(
        self, actor: Principal | None, fields: dict[str, Any], address: str | None = None
    ) -> User:
        """Create a user; admins may set the role, and anonymous callers only with open sign-up.
        A sign-up's address is unconfirmed until its owner follows the link sent to it."""
        if actor is None and not self.open_signup:
            raise Unauthorized("sign-up is closed: an admin creates accounts")
        if actor is not None and not actor.is_admin and not self.open_signup:
            raise Forbidden("only admins create accounts")
        missing = [f for f in ("name", "email", "password") if not fields.get(f)]
        if missing:
            raise InvalidInput("invalid input", {"fields": {f: ["required"] for f in missing}})
        if "role" in fields and not (actor and actor.is_admin):
            raise Forbidden("only admins set roles")
        clean = _check({k: v for k, v in fields.items() if k != "current_password"})
        role = clean.get("role", Role.USER)
        if role is Role.ADMIN and actor is not None:  # a new admin outlives a stolen token
            self._reauthenticate(actor, None, fields.get("current_password"), address)
        vouched = actor is not None and actor.is_admin
        if not vouched:
            self._allow_confirmation(None, clean["email"])
        user = self.users.add(
            NewUser(
                name=clean["name"],
                email=clean["email"],
                phone=clean.get("phone"),
                role=role,
                password_hash=self.passwords.hash(clean["password"]),
                email_confirmed=vouched,
            )
        )
        if not vouched:
            self._send(AccountEmail.CONFIRM, user.id, user.email)
        return user

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

    def update(
        self,
        actor: Principal,
        user_id: int,
        fields: dict[str, Any],
        address: str | None = None,
    ) -> User:
        """Change name and phone; password, email and role with `current_password` too. A new
        password or role retires every earlier token of the user; a new email becomes
        `pending_email` until confirmed. `address` is the caller's, for the login throttle."""
        user = self.get(actor, user_id)
        if "role" in fields and not actor.is_admin:
            raise Forbidden("only admins change roles")
        clean = _check({k: v for k, v in fields.items() if k != "current_password"})
        new_email = clean.pop("email", None)
        resend = False
        if new_email == user.email:  # unchanged; an unconfirmed sign-up gets its link again
            new_email, resend = None, not user.email_confirmed
        role_changed = "role" in clean and clean["role"] is not user.role
        if "password" in clean or new_email or role_changed:
            self._reauthenticate(actor, user, fields.get("current_password"), address)
        if new_email:
            taken = self.users.get_by_email(new_email)
            if taken is not None and taken.id != user.id:
                raise Conflict("that email is taken")
        if new_email or resend:
            self._allow_confirmation(user.id, new_email or user.email)
        changes: dict[str, Any] = {k: clean[k] for k in ("name", "phone") if k in clean}
        if role_changed:
            changes["role"] = clean["role"].value
        if "password" in clean:
            changes["password_hash"] = self.passwords.hash(clean["password"])
        if "password" in clean or role_changed:
            changes["token_version"] = user.token_version + 1
        if new_email:
            changes["pending_email"] = new_email
        updated = self.users.update(user_id, changes) if changes else user
        if updated is None:
            raise NotFound("user not found")
        if new_email or resend:
            self._send(AccountEmail.CONFIRM, user_id, new_email or user.email)
        if "token_version" in changes and self.tokens_changed:
            self.tokens_changed(user_id, updated)
        if "password" in clean:
            if self.password_changed:  # the owner's own address stays theirs
                self.password_changed(user_id, address if actor.user_id == user_id else None)
            if updated.email_confirmed:
                self._send(AccountEmail.PASSWORD_CHANGED, user_id)
        return updated

    def confirm_email(self, actor: Principal, token: str) -> User:
        """Make the address a signed link names the caller's confirmed email. Only the account's
        own session confirms: the link alone (a mail scanner, the mailbox's owner) does not."""
        if self.confirmations is None:
            raise NotFound("no such confirmation")
        user_id, address = self.confirmations.check(token)
        user = self.users.get(user_id) if user_id == actor.user_id else None
        if user is None:
            raise NotFound("no such confirmation")
        old, was_confirmed = user.email, user.email_confirmed
        if old == address and was_confirmed:
            return user  # confirmed already (the link was followed twice)
        if not self.users.confirm_email(user_id, address):
            raise NotFound("no such confirmation: ask for a new link")
        if was_confirmed and old != address:
            self._send(AccountEmail.EMAIL_CHANGED, user_id, old)
        confirmed = self.users.get(user_id)
        if confirmed is None:
            raise NotFound("user not found")
        return confirmed

    def delete(self, actor: Principal, user_id: int) -> User:
        user = self.get(actor, user_id)
        if self.before_delete:  # e.g. remove the user's jobs and files first
            self.before_delete(user_id)
        self.users.delete(user_id)
        if self.tokens_changed:
            self.tokens_changed(user_id, None)
        if self.password_changed:
            self.password_changed(user_id, None)
        return user

    def find_by_name(self, name: str) -> User:
        user = self.users.get_by_name(name.strip()) if name else None
        if user is None:
            raise NotFound("no user with that name")
        return user

    def _reauthenticate(
        self,
        actor: Principal,
        user: User | None,
        current_password: str | None,
        address: str | None,
    ) -> None:
        """The caller proves they know their own password now: a token alone is not enough."""
        if not current_password:
            raise InvalidInput("invalid input", {"fields": {"current_password": [NEEDS_PASSWORD]}})
        caller = user if user is not None and user.id == actor.user_id else None
        caller = caller or self.users.get(actor.user_id)
        if caller is None:
            raise Unauthorized("token revoked")
        if self.reauthenticate is not None:
            self.reauthenticate(caller, current_password, address)
        elif not self.passwords.verify(caller.password_hash, current_password):
            raise Forbidden("current_password is not your password")

    def _allow_confirmation(self, user_id: int | None, address: str) -> None:
        """TooManyRequests once the account, or the address, had its share of confirmations."""
        if self.limiter is None:
            return
        keys = [(CONFIRMATIONS_PER_ADDRESS, f"confirm-email:to:{identifier_key(address)}")]
        if user_id is not None:
            keys.insert(0, (CONFIRMATIONS_PER_ACCOUNT, f"confirm-email:user:{user_id}"))
        for (amount, seconds), key in keys:
            retry = self.limiter.retry_after(amount, seconds, key)
            if retry:
                raise TooManyRequests("too many confirmation emails; try again later", retry)
        for (amount, seconds), key in keys:
            self.limiter.hit(amount, seconds, key)

    def _send(self, kind: AccountEmail, user_id: int, address: str | None = None) -> None:
        if self.queue is None:
            return
        try:
            self.queue.enqueue_account_email(user_id, kind.value, address)
        except Exception:  # the change is made; the user can ask for the link again
            log.exception("could not queue the %s email of user %s", kind.value, user_id)
