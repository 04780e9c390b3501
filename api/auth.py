"""Login with HTTP Basic for a JWT, and token validation."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from api.deps import BASIC_KEY, bearer_token, container, current_principal
from api.openapi import BASIC, BEARER
from api.schemas import ClaimsSchema, TokenSchema
from core.domain.api_keys import looks_like_key
from core.domain.errors import Unauthorized

blp = Blueprint("auth", __name__, description="Log in and check tokens")


@blp.route("/login", methods=["POST"])
@blp.response(200, TokenSchema)
@blp.alt_response(401, description="missing or wrong credentials")
@blp.alt_response(429, description="too many failed logins; see Retry-After")
@blp.doc(security=BASIC)
def login():
    """Exchange HTTP Basic credentials (email, password) for a Bearer token."""
    credentials = request.authorization
    if credentials is None or credentials.type != "basic" or not credentials.username:
        raise Unauthorized("send HTTP Basic credentials: email and password")
    if looks_like_key(credentials.username) or looks_like_key(credentials.password or ""):
        raise Unauthorized(BASIC_KEY)  # never checked as a password: it counts no failure
    return container().auth.login(
        credentials.username, credentials.password or "", request.remote_addr
    )


@blp.route("/validate", methods=["POST"])
@blp.response(200, ClaimsSchema)
@blp.alt_response(401, description="missing, malformed, expired, forged or revoked token")
@blp.doc(security=BEARER)
def validate():
    """The claims of a valid token; for an API key, its user, role and scopes."""
    token = bearer_token()
    if token is None:
        raise Unauthorized("send Authorization: Bearer <token or API key>")
    if looks_like_key(token):
        caller = current_principal()
        assert caller is not None
        return {
            "sub": str(caller.user_id),
            "role": caller.role.value,
            "scopes": sorted(caller.scopes or ()),
        }
    return container().auth.claims(token)
