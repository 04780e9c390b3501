"""Upload a video, watch its job, download the MP3, delete it."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import wraps
from typing import IO, Any, BinaryIO, Callable, ContextManager, cast
from urllib.parse import quote

from flask import Response, request, url_for
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_range_header
from werkzeug.wsgi import FileWrapper, wrap_file

from api.body_deadline import BodyTimeout
from api.deps import container, login_required, upload_slot
from api.errors import error_response
from api.openapi import BEARER
from api.option_schemas import upload_body, upload_parameters
from api.schemas import (
    DownloadQuerySchema,
    JobListQuerySchema,
    JobPageSchema,
    LinkRequestSchema,
    LinkSchema,
    UploadAcceptedSchema,
)
from api.uploads import MultipartUpload
from core.domain.errors import InvalidInput, TooLarge, UnsupportedMedia
from core.domain.jobs import JobStatus
from core.domain.options import AudioOptions
from core.services.job_json import JobSchema
from core.services.jobs import Download

blp = Blueprint("jobs", __name__, description="Video to MP3 jobs")

MULTIPART_OVERHEAD = 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
CHUNK = 256 * 1024
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "makes a retried upload return the first one's job",
}


@blp.route("/upload", methods=["POST"])
@login_required
@blp.response(202, UploadAcceptedSchema)
@blp.alt_response(400, description="a malformed Idempotency-Key or Content-Length")
@blp.alt_response(404, description="the job made with this Idempotency-Key was deleted")
@blp.alt_response(409, description="a request with this Idempotency-Key is still being received")
@blp.alt_response(413, description="larger than MAX_UPLOAD_MB, or over the QUOTA_STORED_MB quota")
@blp.alt_response(415, description="not multipart, or not a video or audio file")
@blp.alt_response(
    422,
    description="no file part, an empty file, a malformed body, an invalid "
    "option, `quality` with `bitrate`, `end` not after `start`, an "
    "option given both as field and query parameter (errors.json "
    "names each), or an Idempotency-Key used for another request",
)
@blp.alt_response(
    429,
    description="over UPLOAD_RATE_LIMIT, QUOTA_ACTIVE_JOBS or QUOTA_CONCURRENT_UPLOADS "
    "(Retry-After; over QUOTA_CONCURRENT_UPLOADS the body is not read and the "
    "connection closes)",
)
@blp.alt_response(503, description="storage or database unavailable")
@blp.doc(
    security=BEARER,
    requestBody=upload_body(),
    parameters=[IDEMPOTENCY_KEY, *upload_parameters()],
)
def upload(actor):
    """Upload a video as multipart field `file`, options as fields before it or as query
    parameters; its conversion is queued.

    With an `Idempotency-Key` header, a retry of the same request (same file and options)
    within 24 h answers with the same job and stores nothing."""
    with upload_slot(actor) as body:
        try:
            return _accept_upload(actor, body)
        except Exception:
            # Read (a bounded amount of) what the client is still sending, so it gets to
            # see the error response instead of a connection reset mid-upload.
            _discard_body(DRAIN_LIMIT)
            raise


def _accept_upload(actor, body: IO[bytes]) -> dict:
    services = container()
    limit = services.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"uploads are limited to {limit // 2**20} MiB")
    if request.mimetype != "multipart/form-data" or "boundary" not in request.mimetype_params:
        raise UnsupportedMedia("send multipart/form-data with the video in field 'file'")
    request.max_content_length = limit + MULTIPART_OVERHEAD
    form = MultipartUpload(body, request.mimetype_params["boundary"].encode())
    received = services.intake.receive(
        actor,
        form,
        lambda: upload_options(form.fields),
        key=request.headers.get("Idempotency-Key"),
        declared_bytes=request.content_length,
    )
    if not received.replayed:
        services.metrics.upload_received(received.job.video_size)
    return _accepted(received.job)


def _accepted(job) -> dict:
    return {
        "job_id": job.id,
        "status": job.status.value,
        "status_url": url_for("jobs.get_job", job_id=job.id),
    }


def upload_options(fields: dict[str, str]) -> AudioOptions:
    """The options of this upload from its query and form; 422 for one given both ways."""
    both = {
        name: ["give it once: as a form field or a query parameter"]
        for name in AudioOptions.NAMES
        if name in fields and name in request.args
    }
    try:
        options = AudioOptions.parse({**fields, **request.args.to_dict()})
    except InvalidInput as exc:
        if not both:
            raise
        raise InvalidInput(exc.message, {"fields": {**exc.details["fields"], **both}}) from None
    if both:
        raise InvalidInput(
            "an option was given both as a form field and a query parameter", {"fields": both}
        )
    return options


def _discard_body(max_bytes: int) -> None:
    stream = request.environ.get("wsgi.input")
    declared = request.content_length
    if stream is None or (declared is not None and declared > max_bytes):
        return  # too much to read: let the server close the connection
    read = 0
    try:
        while read < max_bytes:
            chunk = stream.read(min(256 * 1024, max_bytes - read))
            if not chunk:
                return
            read += len(chunk)
    except (OSError, BodyTimeout):  # gone, or too slow: the connection closes
        return


@blp.route("/jobs", methods=["GET"])
@login_required
@blp.arguments(JobListQuerySchema, location="query")
@blp.response(200, JobPageSchema)
@blp.doc(security=BEARER)
def list_jobs(actor, query):
    """Your jobs, newest first; `status` keeps only the jobs in that status."""
    status = JobStatus(query["status"]) if query.get("status") else None
    return container().jobs.list(actor, query["page"], query["per_page"], status=status)


def conditional(view: Callable[..., Response]) -> Callable[..., Response]:
    """An ETag from the response body; werkzeug answers 304 when If-None-Match has it."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        response = view(*args, **kwargs)
        response.add_etag()
        response.make_conditional(request)
        if response.status_code == 412:
            return error_response(412, "the job has changed since the ETag in If-Match")
        return response

    return wrapped


@blp.route("/jobs/<job_id>", methods=["GET"])
@login_required
@conditional
@blp.response(
    200,
    JobSchema,
    headers={
        "ETag": {"description": "changes whenever the job does", "schema": {"type": "string"}}
    },
)
@blp.alt_response(304, description="unchanged since the ETag sent in If-None-Match")
@blp.alt_response(412, description="If-Match names another ETag")
@blp.alt_response(404, description="no such job, or not yours")
@blp.doc(
    security=BEARER,
    parameters=[
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "the ETag of the copy you hold: 304 while the job is unchanged",
        }
    ],
)
def get_job(actor, job_id):
    """Status, progress, error, sizes, duration and links of a job."""
    return container().jobs.get(actor, job_id)


@blp.route("/jobs/<job_id>", methods=["DELETE"])
@login_required
@blp.response(204)
@blp.alt_response(404, description="no such job, or not yours")
@blp.doc(security=BEARER)
def delete_job(actor, job_id):
    """Delete a job with its video and MP3."""
    container().jobs.delete(actor, job_id)


@blp.route("/jobs/<job_id>/cancel", methods=["POST"])
@login_required
@blp.response(200, JobSchema)
@blp.alt_response(404, description="no such job, or not yours")
@blp.alt_response(409, description="the job is done, failed or cancelled already")
@blp.doc(security=BEARER)
def cancel_job(actor, job_id):
    """Cancel a queued or converting job: ffmpeg stops, no MP3 is kept, no email is sent."""
    services = container()
    job = services.jobs.cancel(actor, job_id)
    services.metrics.job_finished("cancelled")
    return job


@blp.route("/jobs/<job_id>/links", methods=["POST"])
@login_required
@blp.arguments(LinkRequestSchema, required=False)
@blp.response(201, LinkSchema)
@blp.alt_response(404, description="no such job, or not yours")
@blp.alt_response(409, description="the MP3 is not ready")
@blp.alt_response(410, description="the MP3 has expired")
@blp.alt_response(422, description="expires_in outside 60 to 604800")
@blp.doc(security=BEARER)
def create_link(actor, body, job_id):
    """A link that downloads the MP3 without a token until it expires."""
    expires_in = (body or {}).get("expires_in", 86400)
    url, expires_at = container().jobs.create_link(actor, job_id, expires_in)
    return {"url": url, "expires_at": datetime.fromtimestamp(expires_at, timezone.utc)}


@blp.route("/links/<token>", methods=["GET"])
@blp.alt_response(200, description="the MP3", content_type="audio/mpeg")
@blp.alt_response(206, description="a byte range of the MP3", content_type="audio/mpeg")
@blp.alt_response(302, description="S3_PRESIGNED_DOWNLOADS: a presigned URL of the MP3 in S3")
@blp.alt_response(404, description="tampered or unknown link, or its job was deleted")
@blp.alt_response(410, description="the link or the MP3 has expired")
@blp.alt_response(416, description="range not satisfiable")
def link_download(token):
    """Download the MP3 of a signed link (no token; Range, ETag as GET /jobs/<id>/mp3)."""
    return stream_download(container().jobs.download_link(token))


MP3_RESPONSES = {"content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}}}


@blp.route("/jobs/<job_id>/mp3", methods=["GET"])
@login_required
@blp.alt_response(200, description="the MP3", content_type="audio/mpeg")
@blp.alt_response(206, description="a byte range of the MP3", content_type="audio/mpeg")
@blp.alt_response(302, description="S3_PRESIGNED_DOWNLOADS: a presigned URL of the MP3 in S3")
@blp.alt_response(304, description="unchanged since the ETag sent in If-None-Match")
@blp.alt_response(412, description="If-Match names another ETag")
@blp.alt_response(404, description="no such job, not yours, or not done")
@blp.alt_response(410, description="the job has expired: its MP3 was deleted")
@blp.alt_response(416, description="range not satisfiable")
@blp.doc(security=BEARER)
def job_mp3(actor, job_id):
    """Download a job's MP3: HEAD, ETag with If-None-Match (304), Range and If-Range (206)."""
    services = container()
    return stream_download(services.jobs.download(actor, job_id))


@blp.route("/download", methods=["GET"])
@login_required
@blp.arguments(DownloadQuerySchema, location="query")
@blp.alt_response(200, description="the MP3", content_type="audio/mpeg")
@blp.alt_response(206, description="a byte range of the MP3", content_type="audio/mpeg")
@blp.alt_response(302, description="S3_PRESIGNED_DOWNLOADS: a presigned URL of the MP3 in S3")
@blp.alt_response(304, description="unchanged since the ETag sent in If-None-Match")
@blp.alt_response(412, description="If-Match names another ETag")
@blp.alt_response(404, description="no such file, or not yours")
@blp.alt_response(416, description="range not satisfiable")
@blp.doc(security=BEARER)
def download(actor, query):
    """Download an MP3 by its file id (`mp3_fid` of a job)."""
    return stream_download(container().jobs.download_by_fid(actor, query["fid"]))


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name in filename*."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename) or "audio.mp3"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def stream_download(item: Download) -> Response:
    """The MP3 with werkzeug's conditional and partial responses: ETag/304, Range/206, If-Range
    and 416; the store's reader is released on every path, HEAD, 304 and 416 included."""
    disposition = content_disposition(item.filename)
    direct = container().jobs.direct_url(item, disposition)
    if direct is not None:  # S3_PRESIGNED_DOWNLOADS: the store serves the bytes (and Range)
        moved = Response(status=302, headers={"Location": direct})
        moved.headers["Cache-Control"] = "private, no-store"  # the URL expires
        return moved
    size = item.blob.size
    environ = _single_range_environ(request.environ)
    reader = _Reader(container().jobs.open(item))  # opened before the headers: errors stay JSON
    try:
        response = Response(
            FileWrapper(cast(IO[bytes], reader), CHUNK),
            mimetype="audio/mpeg",
            direct_passthrough=True,
        )
        response.content_length = size
        response.set_etag(f"{item.blob.fid}-{size}")
        response.headers["Content-Disposition"] = disposition
        response.headers["Cache-Control"] = "private, max-age=0"
        try:
            response.make_conditional(environ, accept_ranges=True, complete_length=size)
        except RequestedRangeNotSatisfiable:
            reader.close()
            return error_response(
                416,
                "range not satisfiable",
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        if response.status_code == 412:
            reader.close()
            return error_response(412, "the MP3 is not the one named by If-Match")
        if response.status_code in (200, 206) and reader.on_disk():
            # A file on local disk: hand gunicorn its own file wrapper, positioned at the first
            # byte to send, so it writes Content-Length bytes with sendfile(2).
            start = response.content_range.start if response.status_code == 206 else 0
            reader.seek(start or 0)
            response.response = wrap_file(request.environ, cast(IO[bytes], reader), CHUNK)
    except BaseException:
        reader.close()
        raise
    return response


def _single_range_environ(environ: dict) -> dict:
    """werkzeug answers any Range it cannot serve as one part with 416; RFC 9110 lets a server
    ignore a multi-range, non-byte or unreadable Range (`bytes=٢-٥`: werkzeug reads only ASCII
    digits) and send the whole file, which every client reads."""
    if "HTTP_RANGE" not in environ:
        return environ
    parsed = parse_range_header(environ.get("HTTP_RANGE"))
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return {key: value for key, value in environ.items() if key != "HTTP_RANGE"}
    return environ


class _Reader:
    """The blob store's reader; close() leaves the store's context once (a file, a GridFS
    cursor). The response body and the WSGI server call close() when they are done."""

    def __init__(self, opened: ContextManager[BinaryIO]):
        self._opened = opened
        self._file = opened.__enter__()
        self._open = True

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def on_disk(self) -> bool:
        try:
            self._file.fileno()
            return True
        except (AttributeError, OSError, ValueError):
            return False

    def close(self) -> None:
        if self._open:
            self._open = False
            self._opened.__exit__(None, None, None)
