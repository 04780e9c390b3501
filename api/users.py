"""Users: create, list, read, update, delete, and find by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request
from flask_smorest import Blueprint

from api.deps import container, login_optional, login_required
from api.openapi import BEARER
from api.schemas import (
    EmailConfirmationSchema,
    PageQuerySchema,
    PublicUserSchema,
    UserCreateSchema,
    UserPageSchema,
    UserSchema,
    UserUpdatedSchema,
    UserUpdateSchema,
)
from core.domain.accounts import User
from core.domain.api_keys import Scope

blp = Blueprint("users", __name__, description="User accounts (MySQL)")


@blp.route("/users", methods=["POST"])
@login_optional(Scope.ACCOUNT)
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema)
@blp.alt_response(401, description="sign-up is closed and no token was sent")
@blp.alt_response(403, description="not an admin, or current_password is not yours")
@blp.alt_response(409, description="name or email taken")
@blp.alt_response(429, description="too many confirmation emails, or password guesses")
@blp.doc(security=BEARER + [{}])
def create_user(actor, data):
    """Create a user. Admins only, unless OPEN_SIGNUP is on; only admins set `role`, and to
    create an admin they send their own `current_password`. A sign-up (not made by an admin)
    gets a confirmation link by email and no other email until it is followed."""
    return container().users.create(actor, data, request.remote_addr)


@blp.route("/users", methods=["GET"])
@login_required(Scope.ACCOUNT)
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, UserPageSchema)
@blp.alt_response(401, description="no valid token")
@blp.alt_response(403, description="not an admin")
@blp.doc(security=BEARER)
def list_users(actor, query):
    """All users, by id, one page at a time (admins)."""
    return container().users.list(actor, query["page"], query["per_page"])


@blp.route("/users/<int:user_id>", methods=["GET"])
@login_required(Scope.ACCOUNT)
@blp.response(200, UserSchema)
@blp.alt_response(404, description="no such user, or not yours")
@blp.doc(security=BEARER)
def get_user(actor, user_id):
    """One user: yourself, or anyone for admins."""
    return container().users.get(actor, user_id)


@dataclass(frozen=True)
class _Updated:
    """A user as PATCH answers it: with a new token when the caller's own tokens retired."""

    user: User
    token: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@login_required(Scope.ACCOUNT)
@blp.arguments(UserUpdateSchema)
@blp.response(200, UserUpdatedSchema)
@blp.alt_response(403, description="only admins change roles; current_password is not yours")
@blp.alt_response(404, description="no such user, or not yours")
@blp.alt_response(409, description="name or email taken")
@blp.alt_response(429, description="too many password guesses, or confirmation emails")
@blp.doc(security=BEARER)
def update_user(actor, data, user_id):
    """Change name or phone; password, email and role (admins) need `current_password`, the
    caller's own password. A new password or role retires every token of the user issued
    before, the caller's too: changing your own, you get a new `token` in the answer. A new
    email is `pending_email` until confirmed through the link sent to it (POST
    /users/confirm-email); then the old address is told."""
    services = container()
    user = services.users.update(actor, user_id, data, request.remote_addr)
    own_tokens_retired = user_id == actor.user_id and ("password" in data or "role" in data)
    return _Updated(user, services.auth.session(user) if own_tokens_retired else None)


@blp.route("/users/confirm-email", methods=["POST"])
@login_required(Scope.ACCOUNT)
@blp.arguments(EmailConfirmationSchema)
@blp.response(200, UserSchema)
@blp.alt_response(404, description="no such confirmation, or not for your account")
@blp.alt_response(409, description="another account has taken that address meanwhile")
@blp.alt_response(410, description="the link expired; ask for a new one")
@blp.doc(security=BEARER)
def confirm_email(actor, data):
    """Confirm an address with the token of the link sent to it, signed in to the account
    that asked for it: the address becomes the account's email, and the old one is told."""
    return container().users.confirm_email(actor, data["token"])


@blp.route("/users/<int:user_id>", methods=["DELETE"])
@login_required(Scope.ACCOUNT)
@blp.response(204)
@blp.alt_response(404, description="no such user, or not yours")
@blp.doc(security=BEARER)
def delete_user(actor, user_id):
    """Delete a user with their jobs and files."""
    container().users.delete(actor, user_id)


@blp.route("/user/<path:name>", methods=["GET"])
@login_required(Scope.ACCOUNT)
@blp.response(200, PublicUserSchema)
@blp.alt_response(404, description="no user with that name")
@blp.doc(security=BEARER)
def find_user(actor, name):
    """Find a user by exact name: name, phone and member since."""
    return container().users.find_by_name(name)
