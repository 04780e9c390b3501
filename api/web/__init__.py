"""The web page at /app/ and the offline API docs at /docs: packaged static assets, strict headers.

Nothing here talks to a service: the page is plain HTML, CSS and ES modules that call the
JSON API from the browser, and /docs is Swagger UI from the swagger-ui-bundle wheel.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from flask import Blueprint, Flask, Response, redirect, send_from_directory
from werkzeug.exceptions import NotFound

STATIC = Path(__file__).parent / "static"

# No inline script or style anywhere, nothing from another origin, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

page = Blueprint("web", __name__, url_prefix="/app", static_folder="static", static_url_path="")
docs = Blueprint("docs", __name__)
guest = Blueprint("guest", __name__)

# The files of Swagger UI that /docs loads; the bundle's source maps and demo pages stay out.
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "favicon-32x32.png",
    "favicon-16x16.png",
}
SWAGGER_UI_DIST = "swagger-ui-bundle"


def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Revalidate on every load: a new release is picked up at once, unchanged files cost a 304.
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


page.after_request(_secure)
docs.after_request(_secure)
guest.after_request(_secure)


@page.route("", strict_slashes=False)
def app_root():
    """/app -> /app/, so the page's relative module URLs resolve under /app/."""
    return redirect("/app/", code=308)


@page.route("/")
def index():
    return send_from_directory(STATIC, "index.html")


@guest.route("/guest/<token>")
def guest_page(token: str):
    """The page an upload link opens; guest.js reads the token from the address (never
    stored, never sent as a Referer: Referrer-Policy no-referrer)."""
    response = send_from_directory(STATIC, "guest.html")
    response.headers["Cache-Control"] = "no-store"
    return response


@docs.route("/docs")
def docs_page():
    return send_from_directory(STATIC, "docs.html")


@docs.route("/docs/assets/<name>")
def docs_asset(name: str):
    if name in ("docs.js", "docs.css"):
        return send_from_directory(STATIC, name)
    if name not in SWAGGER_UI_FILES:
        raise NotFound()
    return send_from_directory(_swagger_ui_dir(), name)


@docs.route("/docs/LICENSE")
def docs_licence():
    """Swagger UI's licence (Apache-2.0), as its wheel ships it."""
    text = metadata.distribution(SWAGGER_UI_DIST).read_text("LICENSE") or ""
    version = _swagger_ui_dir().name.removeprefix("swagger-ui-")
    header = (
        f"Swagger UI {version} (https://github.com/swagger-api/swagger-ui), "
        f"packaged by the {SWAGGER_UI_DIST} wheel {metadata.version(SWAGGER_UI_DIST)}.\n"
        "Copyright SmartBear Software. Licensed under the Apache License 2.0:\n\n"
    )
    return Response(header + text, mimetype="text/plain")


def _swagger_ui_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def register(app: Flask) -> None:
    app.register_blueprint(page)
    app.register_blueprint(docs)
    app.register_blueprint(guest)
