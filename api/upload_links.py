"""One-time upload links: made by a user, used by anyone holding the URL for one file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import request
from flask_smorest import Blueprint

from api.deps import container, login_required, upload_slot
from api.jobs import DRAIN_LIMIT, MULTIPART_OVERHEAD, _discard_body, stream_download
from api.openapi import BEARER
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
from core.domain.errors import UnsupportedMedia
from core.domain.jobs import JobStatus
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
    422, description="an unknown or invalid option, max_mb over MAX_UPLOAD_MB, or too many links"
)
@blp.doc(security=BEARER)
def create_link(actor, body):
    """A URL that takes one file from anyone holding it, into a job of yours (your quotas, the
    link's options); its token is shown only in this answer."""
    link, url = container().upload_links.create(
        actor,
        body.get("options"),
        body.get("max_mb"),
        body.get("expires_in"),
        bool(body.get("allow_download", False)),
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
