"""GET /metrics: Prometheus text of every gunicorn worker of this API, plus queue lengths."""

from __future__ import annotations

import hmac

from flask import Response, current_app
from flask_smorest import Blueprint

from api.deps import bearer_token, container
from core.domain.errors import Unauthorized

blp = Blueprint("metrics", __name__, description="Prometheus metrics")


@blp.route("/metrics", methods=["GET"])
@blp.alt_response(200, description="Prometheus text format", content_type="text/plain")
@blp.alt_response(401, description="METRICS_TOKEN is set and the Bearer token is not it")
def metrics():
    """Request, job, upload, email and queue metrics (aggregated over the API's workers)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    services = container()
    expected = services.settings.metrics_token
    if expected and not hmac.compare_digest((bearer_token() or "").encode(), expected.encode()):
        raise Unauthorized("send Authorization: Bearer <METRICS_TOKEN>")
    registry = current_app.extensions.get("vid2mp3.metrics")
    if registry is None:
        registry = current_app.extensions["vid2mp3.metrics"] = services.metrics_registry()
    return Response(
        generate_latest(registry),
        content_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
