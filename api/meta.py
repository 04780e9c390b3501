"""Service index with the hit counter, liveness and readiness."""

from __future__ import annotations

from flask_smorest import Blueprint

from api import version
from api.deps import container
from api.schemas import HealthSchema, IndexSchema

blp = Blueprint("meta", __name__, description="Service status")


@blp.route("/", methods=["GET"])
@blp.response(200, IndexSchema)
def index():
    """Name, version and a hit counter that grows by one per call."""
    return {"service": "vid2mp3", "version": version(), "hits": container().items.hit()}


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
def healthz():
    """Liveness: the process answers."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="a backing service is down")
def readyz():
    """Readiness: MySQL, Redis and the blob store answer and the schema is the one this build
    needs; 503 names what is down (or says how far behind the schema is)."""
    checks = container().readiness()
    down = [
        name
        if state == "unavailable"
        else f"{name} ({state.split(': ', 1)[1]})"
        if state.startswith("unavailable: ")
        else state
        for name, state in checks.items()
        if state != "ok" and not (name == "schema" and checks["mysql"] != "ok")
    ]
    if down:
        return {"status": f"unavailable: {', '.join(down)}", "checks": checks}, 503
    return {"status": "ok", "checks": checks}
