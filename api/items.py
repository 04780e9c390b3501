"""TTL items: your own small JSON objects in Redis with an expiry."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from api.deps import container, login_required
from api.errors import error_response
from api.openapi import BEARER
from api.schemas import ItemQuerySchema, ItemSchema
from core.domain.api_keys import Scope

blp = Blueprint("items", __name__, description="TTL items (Redis)")

OBJECT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
}


@blp.route("/items/<path:key>", methods=["PUT"])
@login_required(Scope.ITEMS)
@blp.arguments(ItemQuerySchema, location="query", as_kwargs=True)
@blp.alt_response(200, schema=ItemSchema, description="replaced")
@blp.alt_response(201, schema=ItemSchema, description="created")
@blp.alt_response(400, description="malformed JSON or not an object")
@blp.alt_response(413, description="item too large")
@blp.alt_response(415, description="not JSON")
@blp.doc(security=BEARER, requestBody=OBJECT_BODY)
def put_item(actor, key, ttl=None):
    """Store a JSON object under a key for `ttl` seconds (default one year)."""
    if not request.is_json:
        return error_response(415, "send a JSON object with Content-Type: application/json")
    value = request.get_json()  # already checked to parse by api.errors
    if not isinstance(value, dict):
        return error_response(400, "the body must be a JSON object")
    item, created = container().items.put(actor.user_id, key, value, ttl)
    return item, 201 if created else 200


@blp.route("/items/<path:key>", methods=["GET"])
@login_required(Scope.ITEMS)
@blp.alt_response(200, schema=ItemSchema, description="the object")
@blp.alt_response(404, description="missing or expired")
@blp.doc(security=BEARER)
def get_item(actor, key):
    """Read an object back with its remaining ttl."""
    return container().items.get(actor.user_id, key)


@blp.route("/items/<path:key>", methods=["DELETE"])
@login_required(Scope.ITEMS)
@blp.response(204)
@blp.alt_response(404, description="missing or expired")
@blp.doc(security=BEARER)
def delete_item(actor, key):
    """Remove an object."""
    container().items.delete(actor.user_id, key)
