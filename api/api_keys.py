"""API keys: long-lived, scoped credentials for programs, made and revoked by their owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_smorest import Blueprint

from api.deps import container, login_required
from api.openapi import BEARER
from api.schemas import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyQuerySchema,
    ApiKeySchema,
)
from core.domain.api_keys import ApiKey, Scope

blp = Blueprint("api_keys", __name__, description="API keys for programs")


@dataclass(frozen=True)
class _Created:
    """A new key as POST answers it: with its full text, shown only then."""

    api_key: ApiKey
    key: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api_key, name)


@blp.route("/api-keys", methods=["POST"])
@login_required(Scope.ACCOUNT)
@blp.arguments(ApiKeyCreateSchema)
@blp.response(201, ApiKeyCreatedSchema)
@blp.alt_response(
    403, description="a key without the scope `account`, or asking for more scopes than it holds"
)
@blp.alt_response(
    422, description="no name, unknown scopes, expires_in out of range, or too many keys"
)
@blp.doc(security=BEARER)
def create_key(actor, body):
    """Make an API key; its `key` is shown only in this answer. Send it as
    `Authorization: Bearer <key>`."""
    made, text = container().api_keys.create(
        actor, body["name"], body["scopes"], body.get("expires_in")
    )
    return _Created(made, text)


@blp.route("/api-keys", methods=["GET"])
@login_required(Scope.ACCOUNT)
@blp.arguments(ApiKeyQuerySchema, location="query")
@blp.response(200, ApiKeySchema(many=True))
@blp.alt_response(
    403, description="a key without the scope `account`, or another user's keys and not an admin"
)
@blp.doc(security=BEARER)
def list_keys(actor, query):
    """Your API keys (never their secrets); admins may name another `user_id`."""
    return container().api_keys.list(actor, query.get("user_id"))


@blp.route("/api-keys/<key_id>", methods=["DELETE"])
@login_required(Scope.ACCOUNT)
@blp.response(204)
@blp.alt_response(403, description="a key without the scope `account`")
@blp.alt_response(404, description="no such key, or not yours")
@blp.doc(security=BEARER)
def revoke_key(actor, key_id):
    """Revoke a key (yours, or anyone's for admins): the next request with it gets 401."""
    container().api_keys.revoke(actor, key_id)
