"""CORS, off unless CORS_ORIGINS names the origins allowed to call the API from a browser."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = "Authorization, Content-Type, Range, Idempotency-Key, X-Request-ID"
EXPOSED_HEADERS = (
    "Content-Disposition, Content-Length, Content-Range, ETag, Retry-After, X-Request-ID"
)
# What browser tus clients (tus-js-client, Uppy) send and read on /uploads/.
TUS_ALLOWED_HEADERS = (
    "Tus-Resumable, Upload-Length, Upload-Metadata, Upload-Offset, "
    "Upload-Checksum, Upload-Defer-Length, Upload-Concat, "
    "X-HTTP-Method-Override"
)
TUS_EXPOSED_HEADERS = (
    "Location, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, "
    "Tus-Checksum-Algorithm, Upload-Offset, Upload-Length, Upload-Expires, "
    "Upload-Metadata, Vid2mp3-Job-Id, Vid2mp3-Job-Location"
)


def enable(app: Flask, origins: str) -> None:
    allowed = {origin.strip().rstrip("/") for origin in origins.split(",") if origin.strip()}
    if not allowed:
        return

    @app.after_request
    def add_cors_headers(response: Response) -> Response:
        origin = request.headers.get("Origin", "")
        if origin in allowed or "*" in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = (
                f"{EXPOSED_HEADERS}, {TUS_EXPOSED_HEADERS}"
            )
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = (
                    "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
                )
                response.headers["Access-Control-Allow-Headers"] = (
                    f"{ALLOWED_HEADERS}, {TUS_ALLOWED_HEADERS}"
                )
                response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
        return response
