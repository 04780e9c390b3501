"""One-time upload links: made by a user, used by anyone holding the URL for one file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Response, request, url_for
from flask_smorest import Blueprint
from werkzeug.http import http_date

from api import tus
from api.deps import container, login_required, upload_slot
from api.jobs import DRAIN_LIMIT, MULTIPART_OVERHEAD, _discard_body, stream_download
from api.openapi import BEARER, BODY_TIMEOUT_ERROR
from api.schemas import (
    GuestJobSchema,
    GuestLinkSchema,
    UploadAcceptedSchema,
    UploadLinkCreatedSchema,
    UploadLinkCreateSchema,
    UploadLinkSchema,
)
from api.uploads import MultipartUpload
from core.domain.api_keys import Scope
from core.domain.errors import BadRequest, DomainError, UnsupportedMedia
from core.domain.jobs import JobLabels, JobStatus
from core.domain.upload_links import UploadLink

blp = Blueprint("upload_links", __name__, description="One-time upload links for guests")


@dataclass(frozen=True)
class _Listed:
    link: UploadLink
    state: str
    url: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.link, name)


def _now() -> datetime:
    return datetime.now(UTC)


@blp.route("/upload-links", methods=["POST"])
@login_required(Scope.JOBS_WRITE)
@blp.arguments(UploadLinkCreateSchema)
@blp.response(201, UploadLinkCreatedSchema)
@blp.alt_response(
    422,
    description="an unknown or invalid option, max_mb over MAX_UPLOAD_MB, `tag` over 255 "
    "characters, a `webhook_url` that is not http(s) or not public, or too many links",
)
@blp.doc(security=BEARER)
def create_link(actor, body):
    """A URL that takes one file from anyone holding it, into a job of yours (your quotas, the
    link's options, `tag` and `webhook_url`); its token is shown only in this answer."""
    services = container()
    labels = JobLabels.parse(body)
    services.webhooks.check_job_url(labels.webhook_url)
    link, url = services.upload_links.create(
        actor,
        body.get("options"),
        body.get("max_mb"),
        body.get("expires_in"),
        bool(body.get("allow_download", False)),
        labels.to_dict(),
    )
    return _Listed(link, link.state(_now()), url)


@blp.route("/upload-links", methods=["GET"])
@login_required(Scope.JOBS_READ)
@blp.response(200, UploadLinkSchema(many=True))
@blp.doc(security=BEARER)
def list_links(actor):
    """Your upload links that are not deleted, newest first (without their URLs)."""
    now = _now()
    return [_Listed(link, link.state(now)) for link in container().upload_links.list(actor)]


@blp.route("/upload-links/<link_id>", methods=["DELETE"])
@login_required(Scope.JOBS_WRITE)
@blp.response(204)
@blp.alt_response(404, description="no such link, or not yours")
@blp.doc(security=BEARER)
def delete_link(actor, link_id):
    """Delete a link: its URL answers 410 from then on (a job it made stays)."""
    container().upload_links.delete(actor, link_id)


# --- for the guest: the token in the URL is the only credential -----------------------------


@blp.route("/guest/<token>/link", methods=["GET"])
@blp.response(200, GuestLinkSchema)
@blp.alt_response(404, description="no such link")
@blp.alt_response(410, description="the link was deleted")
def guest_link(token):
    """What the link takes: its state, size cap, lifetime and options."""
    link = container().upload_links.find(token)
    return {
        "state": link.state(_now()),
        "expires_at": link.expires_at,
        "max_mb": link.max_bytes // 2**20,
        "allow_download": link.allow_download,
        "options": link.options,
    }


@blp.route("/guest/<token>/upload", methods=["POST"])
@blp.response(202, UploadAcceptedSchema)
@blp.alt_response(404, description="no such link")
@blp.alt_response(
    409, description="another upload through this link is under way; wait for it to end"
)
@blp.alt_response(410, description="the link was used already, has expired or was deleted")
@blp.alt_response(413, description="larger than the link's max_mb, or over the owner's quota")
@blp.alt_response(415, description="not multipart, or not a video or audio file")
@blp.alt_response(422, description="no file part, an empty file or a malformed body")
@blp.alt_response(429, description="over the owner's upload rate or quotas (Retry-After)")
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
)
def guest_upload(token):
    """Upload the one file of a link as multipart field `file` (no account; the link's options
    apply). Exactly one of two uploads at the same instant wins; the other gets 409, and 410
    once the first succeeded. A failed upload leaves the link open."""
    services = container()
    try:
        link, owner = services.upload_links.claim(token)
    except Exception:
        _discard_body(DRAIN_LIMIT)
        raise
    try:
        with upload_slot(owner) as body:
            try:
                if (
                    request.mimetype != "multipart/form-data"
                    or "boundary" not in request.mimetype_params
                ):
                    raise UnsupportedMedia(
                        "send multipart/form-data with the video in field 'file'"
                    )
                request.max_content_length = link.max_bytes + MULTIPART_OVERHEAD
                form = MultipartUpload(body, request.mimetype_params["boundary"].encode())
                job = services.upload_links.receive(link, owner, form, request.content_length)
            except Exception:
                _discard_body(DRAIN_LIMIT)
                raise
    except BaseException:
        services.upload_links.release(link)
        raise
    services.metrics.upload_received(job.video_size)
    return {"job_id": job.id, "status": job.status.value, "status_url": f"/guest/{token}/job"}


@blp.route("/guest/<token>/job", methods=["GET"])
@blp.response(200, GuestJobSchema)
@blp.alt_response(404, description="no such link, or no file uploaded through it yet")
@blp.alt_response(410, description="the link was deleted")
def guest_job(token):
    """The progress of the job the link's file made."""
    services = container()
    link = services.upload_links.find(token)
    job = services.upload_links.job(token)
    ready = link.allow_download and job.status is JobStatus.DONE
    return {
        "id": job.id,
        "status": job.status.value,
        "progress": job.progress,
        "error": job.error,
        "video_filename": job.video_filename,
        "duration_s": job.duration_s,
        "download_url": f"/guest/{token}/mp3" if ready else None,
    }


@blp.route("/guest/<token>/mp3", methods=["GET"])
@blp.alt_response(200, description="the MP3", content_type="audio/mpeg")
@blp.alt_response(206, description="a byte range of the MP3", content_type="audio/mpeg")
@blp.alt_response(403, description="the link's owner did not allow downloads")
@blp.alt_response(404, description="no such link, or its job is not done")
@blp.alt_response(410, description="the link was deleted, or the MP3 has expired")
@blp.alt_response(416, description="range not satisfiable")
def guest_mp3(token):
    """Download the MP3, when the link's owner allowed it (`allow_download`)."""
    return stream_download(container().upload_links.download(token))


# --- the guest's file over tus: the link's one resumable upload ------------------------------

TUS_412 = {"412": {"description": "Tus-Resumable missing, or not 1.0.0"}}


@blp.after_request
def _tus_headers(response: Response) -> Response:
    if "/uploads/" in request.path:
        tus._tus_headers(response)
    return response


def _guest_progress(token: str, upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset)}
    if upload.job_id:
        headers["Vid2mp3-Job-Id"] = upload.job_id
        headers["Vid2mp3-Job-Location"] = f"/guest/{token}/job"
    else:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    return headers


@blp.route("/guest/<token>/uploads/", methods=["POST"])
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "Upload-Metadata",
            "required": False,
            "schema": {"type": "string"},
            "description": "`filename base64(name)`; the link's options apply",
        }
    ],
    responses={
        **TUS_412,
        "201": {"description": "created; Location names the upload (under this link)"},
        "400": {"description": "Upload-Length missing or not plain ASCII digits, or a body"},
        "404": {"description": "no such link"},
        "409": {"description": "another upload through this link is under way"},
        "410": {"description": "the link was used already, has expired or was deleted"},
        "413": {"description": "Upload-Length over the link's max_mb"},
        "429": {"description": "over the link owner's upload rate or quotas (Retry-After)"},
    },
)
def guest_tus_create(token):
    """Start the link's one file over tus (`Upload-Length`; no body with the creation); resume
    it with HEAD and PATCH at the Location. Claims the link like a multipart upload does."""
    tus._check_version()
    services = container()
    services.upload_links.find(token)  # a wrong token is a 404 whatever the headers
    if request.content_length or "Transfer-Encoding" in request.headers:
        tus._discard_body()
        raise BadRequest("create the upload without a body, then PATCH its bytes")
    length = tus._int_header("Upload-Length")
    metadata = tus.parse_metadata(request.headers.get("Upload-Metadata", ""))
    filename = metadata.get("filename") or metadata.get("name")
    upload = services.upload_links.start_resumable(token, length, filename)
    headers = {
        "Location": url_for(
            "upload_links.guest_tus_head", token=token, upload_id=upload.id, _external=True
        ),
        **_guest_progress(token, upload),
    }
    return Response(status=201, headers=headers)


@blp.route("/guest/<token>/uploads/<upload_id>", methods=["HEAD"])
@blp.doc(
    responses={
        **TUS_412,
        "200": {"description": "Upload-Offset says how many bytes are stored"},
        "404": {"description": "no such link, or not its upload"},
        "410": {"description": "the link was deleted, or the upload expired"},
    }
)
def guest_tus_head(token, upload_id):
    """How far the link's upload got: resume from `Upload-Offset`."""
    tus._check_version()
    services = container()
    _, owner = services.upload_links.resumable_of(token, upload_id)
    upload = services.uploads.get(owner, upload_id)
    headers = {**_guest_progress(token, upload), "Upload-Length": str(upload.length)}
    return Response(status=200, headers=headers)


@blp.route("/guest/<token>/uploads/<upload_id>", methods=["PATCH"])
@blp.doc(
    responses={
        **TUS_412,
        "204": {"description": "stored; the last byte adds Vid2mp3-Job-Id"},
        "400": {"description": "Upload-Offset missing or not plain ASCII digits"},
        "404": {"description": "no such link, or not its upload"},
        "409": {"description": "Upload-Offset does not match, or another PATCH is writing"},
        "410": {"description": "the link was deleted, or the upload expired"},
        "408": {"description": BODY_TIMEOUT_ERROR},
        "413": {"description": "past Upload-Length"},
        "415": {"description": "not application/offset+octet-stream, or not a video at the end"},
        "422": {"description": "a malformed Upload-Checksum"},
        "460": {"description": "the body does not match Upload-Checksum; nothing was kept"},
        "429": {
            "description": "the owner's QUOTA_ACTIVE_JOBS is reached as the last byte arrives "
            "(the upload is discarded; the link takes a file again)"
        },
    },
)
def guest_tus_patch(token, upload_id):
    """Append the body at `Upload-Offset`; the last byte makes the creator's job and uses the
    link."""
    tus._check_version()
    services = container()
    try:
        link, owner = services.upload_links.resumable_of(token, upload_id)
        if request.mimetype != tus.OFFSET_TYPE:
            raise UnsupportedMedia(f"send Content-Type: {tus.OFFSET_TYPE}")
        offset = tus._int_header("Upload-Offset")
    except DomainError:
        tus._discard_body()
        raise
    try:
        with upload_slot(owner) as body:
            result = tus._append(owner, upload_id, offset, body)
    except DomainError:
        services.upload_links.resumable_failed(link, upload_id)
        raise
    services.upload_links.appended(link, result.upload)
    return Response(status=204, headers=_guest_progress(token, result.upload))
