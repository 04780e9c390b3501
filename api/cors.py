"""CORS, off unless CORS_ORIGINS names the origins allowed to call the API from a browser."""
from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = "Authorization, Content-Type, Range"
EXPOSED_HEADERS = "Content-Disposition, Content-Length, Content-Range, ETag, Retry-After"


def enable(app: Flask, origins: str) -> None:
    allowed = {origin.strip().rstrip("/") for origin in origins.split(",") if origin.strip()}
    if not allowed:
        return

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin", "")
        if origin in allowed or "*" in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = \
                    "GET, POST, PUT, PATCH, DELETE, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
        return response
