"""The flask-smorest Api: OpenAPI document generated from the blueprints, and a docs page."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from api.schemas import ErrorSchema

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
BASIC: list[dict[str, list[str]]] = [{"basicAuth": []}]


class Vid2mp3Api(Api):
    ERROR_SCHEMA = ErrorSchema


def create_api(app: Flask) -> Api:
    api = Vid2mp3Api(app, spec_kwargs={"info": {
        "description": "Upload a video, get an MP3 back. Log in with HTTP Basic at /login, "
                       "then send `Authorization: Bearer <token>`."}})
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    return api
