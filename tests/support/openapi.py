"""The OpenAPI document against the app: which operations exist, which statuses are documented."""
from __future__ import annotations

import re
from typing import Any

from flask import Flask

# The document itself and its browser page: served by flask-smorest, not operations of the API.
DOC_ROUTES = frozenset({"/openapi.json", "/docs"})
METHODS = ("get", "put", "post", "delete", "patch")


def spec_path(rule: str) -> str:
    """A werkzeug rule as an OpenAPI path: /jobs/<job_id> and /users/<int:user_id> -> {name}."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    """(path, method) of every route the app answers, HEAD and OPTIONS aside."""
    return {(spec_path(rule.rule), method.lower())
            for rule in app.url_map.iter_rules() if rule.rule not in DOC_ROUTES
            for method in rule.methods or () if method.lower() in METHODS}


def documented_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in spec["paths"].items()
            for method in item if method in METHODS}


def documented_statuses(spec: dict[str, Any], path: str, method: str) -> set[int]:
    responses = spec["paths"][path][method]["responses"]
    return {int(code) for code in responses if code != "default"}
