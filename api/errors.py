"""One JSON error shape for every failure: domain errors, HTTP errors, outages and bugs."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.body_deadline import BodyTimeout
from core.domain.errors import (
    Busy,
    DomainError,
    QuotaExceeded,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from core.domain.values import ascii_int

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    412: "precondition_failed",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


FRIENDLY = {
    404: "no such resource",
    405: "method not allowed for this resource",
    413: "the request body is too large",
    422: "invalid input",
}


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "status": status,
        "code": code or CODES.get(status, "error"),
        "message": message,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class SafeJSONProvider(DefaultJSONProvider):
    """Rejects absurdly nested JSON as invalid input instead of failing with RecursionError."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _domain_error(exc: DomainError) -> Response:
    errors = exc.details.get("fields") if exc.details else None
    headers = None
    body_errors = {"json": errors} if errors else None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": "5"}
    elif isinstance(exc, (TooManyRequests, Busy)):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, QuotaExceeded):
        body_errors = exc.details
        if exc.retry_after:
            headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, Unauthorized):
        scheme = "Basic" if request.endpoint == "auth.login" else "Bearer"
        headers = {"WWW-Authenticate": f'{scheme} realm="vid2mp3"'}
    if isinstance(exc, Unavailable):
        log.warning("%s", exc.message)
    return error_response(exc.status, exc.message, exc.code, body_errors, headers)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    message = FRIENDLY.get(status) or exc.description
    headers = {
        k: v
        for k, v in exc.get_headers()
        if k.lower() in ("allow", "www-authenticate", "retry-after")
    }
    return error_response(status, message or exc.name, errors=messages, headers=headers)


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal error")


def _check_content_length() -> Response | None:
    """Content-Length is plain ASCII digits or absent: werkzeug reads a malformed one as 0 and
    gunicorn reads Unicode digits (٣) as a number, so the two could disagree on the body."""
    raw = request.environ.get("CONTENT_LENGTH")
    if raw in (None, "") or ascii_int(raw) is not None:
        return None
    return error_response(400, "Content-Length must be plain ASCII digits")


def _require_json_bodies() -> Response | None:
    """Bodies of JSON routes must be JSON: wrong type -> 415, malformed -> 400."""
    if request.method not in ("POST", "PUT", "PATCH") or request.endpoint in JSON_EXEMPT:
        return None
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return None
    if not request.is_json:
        return error_response(415, "send a JSON body with Content-Type: application/json")
    try:
        request.get_json()
    except (RequestEntityTooLarge, BodyTimeout) as exc:
        return _http_error(exc)
    except HTTPException:
        return error_response(400, "the body is not valid UTF-8 JSON")
    return None


JSON_EXEMPT = {
    "auth.login",
    "auth.validate",
    "jobs.upload",
    "tus.create",
    "tus.patch",
    "upload_links.guest_upload",
    "upload_links.guest_tus_create",
    "upload_links.guest_tus_patch",
}


def register(app: Flask) -> None:
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.before_request(_check_content_length)
    app.before_request(_require_json_bodies)
