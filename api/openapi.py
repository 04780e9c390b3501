"""The flask-smorest Api: OpenAPI document generated from the blueprints, and a docs page."""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api

from api.deps import SCOPE_EXTENSION
from api.schemas import ErrorSchema

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
BASIC: list[dict[str, list[str]]] = [{"basicAuth": []}]

NO_BACKING_SERVICE = {"/healthz", "/metrics"}
JSON_BODY_ERRORS = {
    400: "the body is not valid UTF-8 JSON",
    413: "the body is larger than MAX_JSON_BYTES",
    415: "the body is not application/json",
}


BODY_TIMEOUT_ERROR = (
    "the body stopped for BODY_TIMEOUT_SECONDS, or came slower than BODY_MIN_RATE; the "
    "connection closes"
)


class Vid2mp3Api(Api):
    ERROR_SCHEMA = ErrorSchema


GUESSES = (
    "too many failed logins or API keys from your address: even a valid key waits (Retry-After)"
)


def _add_or_extend(
    responses: dict[str, Any], common: dict[int, str], status: int, description: str
) -> None:
    """Document `status` with `description`, or add it to the view's own words for it."""
    documented = responses.get(str(status))
    if documented:
        documented["description"] += f"; or {description}"
    else:
        common[status] = description


class CommonErrors(BasePlugin):
    """Documents, on every operation they apply to, the errors that come from the shared request
    path rather than from the view: 401 (the token is checked first), 403 for an API key
    without the operation's scope (which the description names too), 503 (MySQL, Redis or the
    blob store is down), the JSON body checks of `api.errors` and the body deadline (408)."""

    def operation_helper(
        self, path: str | None = None, operations: dict | None = None, **kwargs: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            common: dict[int, str] = {}
            if operation.get("security") == BEARER:
                common[401] = (
                    "no valid Bearer token or API key: missing, malformed, expired or revoked "
                    "(the message says which), a key in the query string, or sent as Basic "
                    "credentials"
                )
            scope = operation.get(SCOPE_EXTENSION)
            if scope:
                _add_or_extend(responses, common, 429, GUESSES)
                _add_or_extend(responses, common, 403, f"an API key without the scope `{scope}`")
                operation["description"] = (
                    operation.get("description", "") + f"\n\nAPI key scope: `{scope}`."
                ).strip()
            if path not in NO_BACKING_SERVICE and method != "options":
                common[503] = "MySQL, Redis or the blob store is unavailable; retry later"
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                common.update(JSON_BODY_ERRORS)
            if operation.get("requestBody"):
                common[408] = BODY_TIMEOUT_ERROR
            for status, description in common.items():
                if status not in responses and str(status) not in responses:
                    responses[str(status)] = {
                        "description": description,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    }


def create_api(app: Flask) -> Api:
    api = Vid2mp3Api(
        app,
        spec_kwargs={
            "extra_plugins": [CommonErrors()],
            "info": {
                "description": "Upload a video, get an MP3 back. Log in with HTTP Basic at /login, "
                "then send `Authorization: Bearer <token>`; programs send an API key "
                "(POST /api-keys) the same way, limited to the operations of its scopes "
                "(`x-api-key-scope`)."
            },
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from /login (a JWT), or an API key v2m_<prefix>_<secret>",
        },
    )
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    return api
