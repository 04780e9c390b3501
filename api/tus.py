"""Resumable uploads over tus 1.0.0 (https://tus.io/protocols/resumable-upload): core,
creation, creation-with-upload, termination, expiration and checksum.

No maintained tus server exists for WSGI, so the protocol's headers are handled here; the
rules (offsets, leases, expiry, the job at the end) live in core.services.uploads.
When the last byte arrives, the response carries the new job in `Vid2mp3-Job-Id` and
`Vid2mp3-Job-Location` (tus PATCH responses are 204, without a body).
"""

from __future__ import annotations

import base64
import binascii
from typing import IO, Iterator

from flask import Response, request, url_for
from flask_smorest import Blueprint
from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import http_date

from api.body_deadline import BodyTimeout
from api.deps import container, login_required, upload_slot
from api.openapi import BEARER, BODY_TIMEOUT_ERROR
from api.option_schemas import metadata_parameter
from core.domain.api_keys import Scope
from core.domain.errors import (
    BadRequest,
    DomainError,
    InvalidInput,
    PreconditionFailed,
    UnsupportedMedia,
)
from core.domain.jobs import Upload
from core.domain.values import MAX_DIGITS, ascii_int
from core.services.uploads import (
    CHECKSUM_ALGORITHMS,
    EXTENSIONS,
    TUS_VERSION,
    AppendResult,
    parse_checksum,
)

blp = Blueprint("tus", __name__, description="Resumable uploads (tus 1.0.0)")

READ_SIZE = 256 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024
OFFSET_TYPE = "application/offset+octet-stream"
TUS_RESPONSES = {"204": {"description": "done; see the tus headers"}}
VERSION_412 = {"412": {"description": "Tus-Resumable missing, or not 1.0.0"}}


@blp.before_request
def _check_version() -> None:
    """Every tus request but OPTIONS names the protocol version it speaks (412 otherwise)."""
    if request.method == "OPTIONS":
        return
    version = request.headers.get("Tus-Resumable")
    if version != TUS_VERSION:
        _discard_body()
        raise PreconditionFailed(
            "send Tus-Resumable: 1.0.0"
            if version is None
            else f"Tus-Resumable {version} is not supported; this server speaks {TUS_VERSION}"
        )


@blp.after_request
def _tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    if response.status_code == 412:
        response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/uploads/", methods=["OPTIONS"])
@blp.doc(responses=TUS_RESPONSES)
def options():
    """What this server supports. No token needed: it describes the server, not your data,
    and browsers send CORS preflights without credentials."""
    return _empty(
        204,
        {
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": ",".join(EXTENSIONS),
            "Tus-Max-Size": str(container().uploads.max_length),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@blp.route("/uploads/", methods=["POST"])
@login_required(Scope.JOBS_WRITE)
@blp.doc(
    security=BEARER,
    parameters=[metadata_parameter()],
    responses={
        **VERSION_412,
        "400": {"description": "Upload-Length missing or not plain ASCII digits"},
        "408": {"description": BODY_TIMEOUT_ERROR},
        "201": {
            "description": "created (or, for a retry with the same Idempotency-Key, the "
            "upload the first request created); Location names the upload, Upload-Offset "
            "says where to continue"
        },
        "409": {"description": "a creation with this Idempotency-Key is still being answered"},
        "413": {"description": "Upload-Length over MAX_UPLOAD_MB"},
        "422": {
            "description": "an invalid conversion option in Upload-Metadata, or an "
            "Idempotency-Key used for a different creation"
        },
        "429": {
            "description": "the upload rate or a quota (QUOTA_ACTIVE_JOBS, or "
            "QUOTA_CONCURRENT_UPLOADS with a first piece of the body) is reached"
        },
    },
)
def create(actor):
    """Create an upload (`Upload-Length`, `Upload-Metadata` with `filename` and the
    conversion options); a body with Content-Type application/offset+octet-stream is its
    first bytes. An `Idempotency-Key` makes a retried creation return the same upload."""
    if not request.content_length and "Transfer-Encoding" not in request.headers:
        return _create(actor, None)
    with upload_slot(actor) as body:  # the first bytes come with it
        return _create(actor, body)


def _create(actor, body: IO[bytes] | None) -> Response:
    try:
        if "Upload-Defer-Length" in request.headers:
            raise InvalidInput("Upload-Defer-Length is not supported: send Upload-Length")
        length = _int_header("Upload-Length")
        metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
        container().webhooks.check_job_url(metadata.get("webhook_url") or None)
        if body is not None and request.mimetype != OFFSET_TYPE:
            raise UnsupportedMedia(f"send the first bytes as {OFFSET_TYPE}")
        key = request.headers.get("Idempotency-Key")
        created = container().uploads.create(actor, length, metadata, key)
    except DomainError:
        _discard_body()
        raise
    upload = created.upload
    headers = {"Location": url_for("tus.head", upload_id=upload.id, _external=True)}
    if created.replayed:
        _discard_body()  # what the first creation stored stays; the client resumes from it
    elif body is not None:
        upload = _append(actor, upload.id, 0, body).upload
    headers.update(_progress_headers(upload))
    return _empty(201, headers)


@blp.route("/uploads/<upload_id>", methods=["HEAD"])
@login_required(Scope.JOBS_WRITE)
@blp.doc(
    security=BEARER,
    responses={
        **VERSION_412,
        "200": {"description": "Upload-Offset says how many bytes are stored"},
        "404": {"description": "no such upload, or not yours"},
        "410": {"description": "expired"},
    },
)
def head(actor, upload_id):
    """How far an upload got: resume from `Upload-Offset`."""
    upload = container().uploads.get(actor, upload_id)
    headers = _progress_headers(upload)
    headers["Upload-Length"] = str(upload.length)
    return _empty(200, headers)


@blp.route("/uploads/<upload_id>", methods=["PATCH"])
@login_required(Scope.JOBS_WRITE)
@blp.doc(
    security=BEARER,
    responses={
        **VERSION_412,
        "404": {"description": "no such upload, or not yours"},
        "410": {"description": "expired"},
        "413": {"description": "past Upload-Length"},
        "400": {"description": "Upload-Offset or Content-Length missing or not plain ASCII digits"},
        "408": {"description": BODY_TIMEOUT_ERROR},
        "422": {"description": "a malformed Upload-Checksum"},
        "204": {
            "description": "stored; the last byte adds Vid2mp3-Job-Id and Vid2mp3-Job-Location"
        },
        "409": {"description": "Upload-Offset does not match, or another PATCH is writing"},
        "429": {
            "description": "QUOTA_CONCURRENT_UPLOADS: the caller's other uploads are being "
            "received (the body is not read; retry after Retry-After), or QUOTA_ACTIVE_JOBS "
            "is reached as the last byte arrives (the upload is discarded)"
        },
        "415": {"description": "not application/offset+octet-stream, or not a video at the end"},
        "460": {"description": "the body does not match Upload-Checksum; nothing was kept"},
    },
)
def patch(actor, upload_id):
    """Append the body at `Upload-Offset` (with `Upload-Checksum: sha1 <base64>` if you like)."""
    try:
        if request.mimetype != OFFSET_TYPE:
            raise UnsupportedMedia(f"send Content-Type: {OFFSET_TYPE}")
        offset = _int_header("Upload-Offset")
    except DomainError:
        _discard_body()
        raise
    with upload_slot(actor) as body:
        result = _append(actor, upload_id, offset, body)
    return _empty(204, _progress_headers(result.upload))


@blp.route("/uploads/<upload_id>", methods=["DELETE"])
@login_required(Scope.JOBS_WRITE)
@blp.doc(
    security=BEARER,
    responses={
        **VERSION_412,
        "204": {"description": "deleted with its bytes"},
        "404": {"description": "no such upload, or not yours"},
    },
)
def terminate(actor, upload_id):
    """Abandon an upload and delete what was stored of it."""
    container().uploads.terminate(actor, upload_id)
    return _empty(204, {})


# --- helpers ---------------------------------------------------------------------------


def parse_metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64(value)` pairs (the value may be absent)."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidInput(f"Upload-Metadata value of {key!r} is not base64 UTF-8") from None
    return metadata


def _append(actor, upload_id: str, offset: int, body: IO[bytes]) -> AppendResult:
    services = container()
    checksum_header = request.headers.get("Upload-Checksum")
    try:
        checksum = parse_checksum(checksum_header) if checksum_header else None
    except DomainError:
        _discard_body()
        raise
    request.max_content_length = services.uploads.max_length
    declared = request.content_length
    try:
        return services.uploads.append(
            actor, upload_id, offset, _chunks(body, declared), declared, checksum
        )
    except DomainError:
        _discard_body()
        raise


def _chunks(stream: IO[bytes], declared: int | None) -> Iterator[bytes]:
    """The body in pieces; a body shorter than its Content-Length is a dropped connection."""
    received = 0
    while chunk := stream.read(READ_SIZE):
        received += len(chunk)
        yield chunk
    if declared is not None and received < declared:
        raise ClientDisconnected()


def _progress_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset)}
    if upload.job_id:
        headers["Vid2mp3-Job-Id"] = upload.job_id
        headers["Vid2mp3-Job-Location"] = url_for("jobs.get_job", job_id=upload.job_id)
    else:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    return headers


def _int_header(name: str) -> int:
    """A header that holds a byte count: plain ASCII digits, or 400."""
    number = ascii_int(request.headers.get(name))
    if number is None:
        raise BadRequest(
            f"send {name} as a non-negative integer in plain ASCII digits (at most {MAX_DIGITS})",
            {"fields": {name: ["plain ASCII digits"]}},
        )
    return number


def _empty(status: int, headers: dict[str, str]) -> Response:
    return Response(status=status, headers=headers)


def _discard_body() -> None:
    """Read what the client is still sending (up to a bound), so it sees the error response."""
    stream = request.environ.get("wsgi.input")
    declared = request.content_length
    if stream is None or not declared or declared > DRAIN_LIMIT:
        return
    try:
        left = declared
        while left > 0 and (chunk := stream.read(min(READ_SIZE, left))):
            left -= len(chunk)
    except (OSError, BodyTimeout):  # gone, or too slow: the connection closes
        return
