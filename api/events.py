"""Live job events: GET /jobs/<id>/events as Server-Sent Events, and the short-lived ticket a
browser opens it with (EventSource sends no Authorization header)."""

from __future__ import annotations

import socket
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from api.deps import authorized, bearer_token, container, login_required, scoped
from api.openapi import BEARER
from api.schemas import EventStreamLinkSchema
from core.domain.accounts import Principal, Role
from core.domain.api_keys import Scope
from core.domain.errors import Unauthorized

blp = Blueprint("events", __name__, description="Live job events")

_SALT = "vid2mp3.job-events"
_EVENTS_DOC = (
    "`text/event-stream`: `event: status` with the job's current state first (on every "
    "connect and reconnect), then `event: status` on each change and `event: progress` at most "
    "every 0.5 s; `data:` is the job's JSON as GET /jobs/<id> gives it, `id:` grows with each "
    "change (send it back as Last-Event-ID; the current state comes first anyway). A `: "
    "keepalive` comment every EVENTS_KEEPALIVE_SECONDS; the stream ends after `done`, "
    "`failed`, `cancelled` or `expired` (or `event: deleted`)."
)


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(container().settings.jwt_secret, salt=_SALT)


def _ticket_principal(ticket: str, job_id: str) -> Principal:
    """The caller a stream ticket was signed for, only for this job and while fresh."""
    try:
        claims: Any = _signer().loads(ticket, max_age=container().settings.events_ticket_seconds)
    except SignatureExpired:
        raise Unauthorized("the stream ticket expired; ask for a new one") from None
    except BadSignature:
        raise Unauthorized("invalid stream ticket") from None
    if not isinstance(claims, dict) or claims.get("job") != job_id:
        raise Unauthorized("invalid stream ticket")
    return Principal(user_id=int(claims["user"]), role=Role(claims["role"]))


@blp.route("/jobs/<job_id>/events/ticket", methods=["POST"])
@login_required(Scope.JOBS_READ)
@blp.response(200, EventStreamLinkSchema)
@blp.alt_response(404, description="no such job, or not yours")
@blp.doc(security=BEARER)
def event_ticket(actor, job_id):
    """A URL that opens this job's event stream for EVENTS_TICKET_SECONDS, signed for you and
    this job only: for a browser's EventSource, so the long-lived token stays out of URLs."""
    container().jobs.get(actor, job_id)  # 404 when not yours
    ticket = _signer().dumps({"job": job_id, "user": actor.user_id, "role": actor.role.value})
    return {
        "url": f"/jobs/{job_id}/events?ticket={ticket}",
        "expires_in": container().settings.events_ticket_seconds,
    }


@blp.route("/jobs/<job_id>/events", methods=["GET"])
@scoped(Scope.JOBS_READ)
@blp.response(200, description=_EVENTS_DOC, content_type="text/event-stream")
@blp.alt_response(401, description="no valid token, or no valid ticket for this job")
@blp.alt_response(404, description="no such job, or not yours")
@blp.alt_response(
    503,
    description="EVENTS_MAX_STREAMS open in this process, or EVENTS_MAX_STREAMS_PER_USER open "
    "for you (Retry-After): poll GET /jobs/<id> instead",
)
@blp.doc(
    security=BEARER,
    parameters=[
        {
            "name": "ticket",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "from POST /jobs/<id>/events/ticket, instead of Authorization",
        },
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "the last id received; the current state is sent first all the same",
        },
    ],
)
def job_events(job_id):
    """Follow a job live: its state now, then each change, until it ends."""
    ticket = request.args.get("ticket")
    if ticket and bearer_token() is None:
        actor = _ticket_principal(ticket, job_id)
    else:
        actor = authorized(Scope.JOBS_READ)
    services = container()
    stream = services.job_streams.open(actor, job_id)
    _bound_sends(services.settings.events_send_timeout_seconds)

    # No request context kept while streaming: the stream needs none, and the teardown
    # (connections back to their pools) runs now.
    response = Response(
        iter(stream),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(stream.close)
    return response


def _bound_sends(seconds: int) -> None:
    """A client that stops reading blocks our writes once its buffers fill: past `seconds`
    without progress the write fails and the stream ends, its thread and budget freed."""
    sock = request.environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)
