"""The OpenAPI document against the app: which operations exist, which statuses are documented."""

from __future__ import annotations

import functools
import re
import tempfile
from typing import Any

from flask import Flask

# Routes that are not operations of the API, each listed by its exact rule so that a new route
# must be documented or added here: the document, its Swagger UI page and the page's assets,
# and the web page (HTML and static assets for browsers).
DOC_ROUTES = frozenset(
    {
        "/openapi.json",
        "/docs",
        "/docs/LICENSE",
        "/docs/assets/<name>",
        "/app",
        "/app/",
        "/app/<path:filename>",
        "/guest/<token>",
    }
)
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def spec_path(rule: str) -> str:
    """A werkzeug rule as an OpenAPI path: /jobs/<job_id> and /users/<int:user_id> -> {name}."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    """(path, method) of every route the app answers, without the HEAD Flask adds to each GET
    and the OPTIONS it adds to every route."""
    operations = set()
    for rule in app.url_map.iter_rules():
        methods = set(rule.methods or ())
        if rule.rule in DOC_ROUTES:
            continue
        if "GET" in methods:
            methods.discard("HEAD")
        if getattr(rule, "provide_automatic_options", False):
            methods.discard("OPTIONS")
        operations |= {(spec_path(rule.rule), method.lower()) for method in methods}
    return operations


def documented_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


def documented_statuses(spec: dict[str, Any], path: str, method: str) -> set[int]:
    responses = spec["paths"][path][method]["responses"]
    return {int(code) for code in responses if code != "default"}


@functools.cache
def reference() -> tuple[Flask, dict[str, Any]]:
    """An app built from the test settings (it connects to nothing) and its OpenAPI document."""
    from api import create_app
    from tests.support.config import service_env

    app = create_app(service_env(DATA_DIR=tempfile.gettempdir()))
    return app, app.test_client().get("/openapi.json").get_json()


def operations_documenting(status: int) -> list[tuple[str, str]]:
    """(path, method) of every operation that documents `status`."""
    _, spec = reference()
    return sorted(
        operation
        for operation in documented_operations(spec)
        if status in documented_statuses(spec, *operation)
    )


def example_url(path: str) -> str:
    """A concrete URL for a documented path, with well-formed values for its parameters."""
    values = {
        "job_id": "0" * 32,
        "user_id": "999999",
        "key": "some/key",
        "name": "nobody",
        "upload_id": "0" * 32,
        "endpoint_id": "0" * 32,
        "delivery_id": "0" * 32,
        "key_id": "0" * 32,
        "link_id": "0" * 32,
        "token": "not-a-token",
    }
    url = re.sub(r"{([^}]+)}", lambda match: values[match.group(1)], path)
    return url + ("?fid=" + "0" * 24 if path == "/download" else "")


def json_body_operations() -> list[tuple[str, str]]:
    """(path, method) of every operation whose request body is JSON."""
    _, spec = reference()
    return sorted(
        (path, method)
        for path, method in documented_operations(spec)
        if "application/json"
        in spec["paths"][path][method].get("requestBody", {}).get("content", {})
    )


def example_body(path: str, method: str) -> dict[str, Any] | None:
    """A valid JSON body for the operations that take one, so only the check under test fails."""
    bodies = {
        ("/users", "post"): {
            "name": "example",
            "email": "example@example.com",
            "password": "password-1",
        },
        ("/users/{user_id}", "patch"): {"phone": "+1 555 0100"},
        ("/items/{key}", "put"): {"text": "hello"},
    }
    return bodies.get((path, method))


def secured_operations() -> list[tuple[str, str]]:
    """(path, method) of every operation that asks for credentials (Bearer or Basic)."""
    _, spec = reference()
    return sorted(
        (path, method)
        for path, method in documented_operations(spec)
        if spec["paths"][path][method].get("security")
    )


# Headers every request of the spec-driven tests carries: tus routes check their protocol
# version before anything else; other routes ignore it.
PROTOCOL_HEADERS = {"Tus-Resumable": "1.0.0"}
