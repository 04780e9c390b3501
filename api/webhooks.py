"""Register webhook receivers and look at their deliveries."""

from __future__ import annotations

from flask_smorest import Blueprint

from api.deps import container, login_required
from api.openapi import BEARER
from api.schemas import (
    SigningSecretSchema,
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookDeliverySchema,
    WebhookSchema,
)
from core.domain.api_keys import Scope

blp = Blueprint("webhooks", __name__, description="Signed webhooks for job outcomes")


@blp.route("/webhooks", methods=["POST"])
@login_required(Scope.WEBHOOKS)
@blp.arguments(WebhookCreateSchema)
@blp.response(201, WebhookCreatedSchema)
@blp.alt_response(
    422,
    description="not an http(s) URL resolving only to public addresses, "
    "unknown events, or too many webhooks",
)
@blp.doc(security=BEARER)
def create_webhook(actor, body):
    """Register a receiver of `job.succeeded`, `job.failed`, `job.cancelled`; the signing
    `secret` is shown only in this answer."""
    return container().webhooks.register(actor, body["url"], body.get("events"))


@blp.route("/webhooks", methods=["GET"])
@login_required(Scope.WEBHOOKS)
@blp.response(200, WebhookSchema(many=True))
@blp.doc(security=BEARER)
def list_webhooks(actor):
    """Your webhooks (without their secrets)."""
    return container().webhooks.endpoints(actor)


@blp.route("/webhooks/<endpoint_id>", methods=["DELETE"])
@login_required(Scope.WEBHOOKS)
@blp.response(204)
@blp.alt_response(404, description="no such webhook, or not yours")
@blp.doc(security=BEARER)
def delete_webhook(actor, endpoint_id):
    """Stop sending to a receiver."""
    container().webhooks.delete(actor, endpoint_id)


@blp.route("/webhooks/<endpoint_id>/deliveries", methods=["GET"])
@login_required(Scope.WEBHOOKS)
@blp.response(200, WebhookDeliverySchema(many=True))
@blp.alt_response(404, description="no such webhook, or not yours")
@blp.doc(security=BEARER)
def list_deliveries(actor, endpoint_id):
    """The last 100 messages to this receiver, newest first."""
    return container().webhooks.deliveries(actor, endpoint_id)


@blp.route("/webhooks/<endpoint_id>/deliveries/<delivery_id>/redeliver", methods=["POST"])
@login_required(Scope.WEBHOOKS)
@blp.response(202, WebhookDeliverySchema)
@blp.alt_response(404, description="no such webhook or delivery, or not yours")
@blp.alt_response(429, description="over WEBHOOK_REDELIVER_RATE_LIMIT (Retry-After)")
@blp.doc(security=BEARER)
def redeliver(actor, endpoint_id, delivery_id):
    """Send a message again, with the same `webhook-id` (at most WEBHOOK_REDELIVER_RATE_LIMIT
    per user)."""
    return container().webhooks.redeliver(actor, endpoint_id, delivery_id)


@blp.route("/webhooks/secret", methods=["GET"])
@login_required(Scope.WEBHOOKS)
@blp.response(200, SigningSecretSchema)
@blp.doc(security=BEARER)
def signing_secret(actor):
    """The secret that signs the messages sent to your jobs' own `webhook_url` (made on first
    use); registered webhooks keep their own."""
    return {"secret": container().webhooks.signing_secret(actor)}


@blp.route("/webhooks/secret/rotate", methods=["POST"])
@login_required(Scope.WEBHOOKS)
@blp.response(200, SigningSecretSchema)
@blp.doc(security=BEARER)
def rotate_signing_secret(actor):
    """Replace the signing secret of your jobs' own `webhook_url`: every message sent from now
    on, retries included, is signed with the new one."""
    return {"secret": container().webhooks.signing_secret(actor, rotate=True)}
