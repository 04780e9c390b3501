"""Users: create, list, read, update, delete, and find by name."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.deps import container, login_optional, login_required
from api.openapi import BEARER
from api.schemas import (
    PageQuerySchema,
    PublicUserSchema,
    UserCreateSchema,
    UserPageSchema,
    UserSchema,
    UserUpdateSchema,
)

blp = Blueprint("users", __name__, description="User accounts (MySQL)")


@blp.route("/users", methods=["POST"])
@login_optional
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema)
@blp.alt_response(401, description="sign-up is closed and no token was sent")
@blp.alt_response(403, description="not an admin")
@blp.alt_response(409, description="name or email taken")
@blp.doc(security=BEARER + [{}])
def create_user(actor, data):
    """Create a user. Admins only, unless OPEN_SIGNUP is on; only admins set `role`."""
    return container().users.create(actor, data)


@blp.route("/users", methods=["GET"])
@login_required
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, UserPageSchema)
@blp.alt_response(401, description="no valid token")
@blp.alt_response(403, description="not an admin")
@blp.doc(security=BEARER)
def list_users(actor, query):
    """All users, by id, one page at a time (admins)."""
    return container().users.list(actor, query["page"], query["per_page"])


@blp.route("/users/<int:user_id>", methods=["GET"])
@login_required
@blp.response(200, UserSchema)
@blp.alt_response(404, description="no such user, or not yours")
@blp.doc(security=BEARER)
def get_user(actor, user_id):
    """One user: yourself, or anyone for admins."""
    return container().users.get(actor, user_id)


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@login_required
@blp.arguments(UserUpdateSchema)
@blp.response(200, UserSchema)
@blp.alt_response(403, description="only admins change roles")
@blp.alt_response(404, description="no such user, or not yours")
@blp.alt_response(409, description="name or email taken")
@blp.doc(security=BEARER)
def update_user(actor, data, user_id):
    """Change name, email, phone or password (role: admins). A new password or role
    retires every token issued before."""
    return container().users.update(actor, user_id, data)


@blp.route("/users/<int:user_id>", methods=["DELETE"])
@login_required
@blp.response(204)
@blp.alt_response(404, description="no such user, or not yours")
@blp.doc(security=BEARER)
def delete_user(actor, user_id):
    """Delete a user with their jobs and files."""
    container().users.delete(actor, user_id)


@blp.route("/user/<path:name>", methods=["GET"])
@login_required
@blp.response(200, PublicUserSchema)
@blp.alt_response(404, description="no user with that name")
@blp.doc(security=BEARER)
def find_user(actor, name):
    """Find a user by exact name: name, phone and member since."""
    return container().users.find_by_name(name)
