"""Upload a video, watch its job, download the MP3, delete it."""

from __future__ import annotations

import json
import re
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from functools import wraps
from typing import IO, Any, BinaryIO, Callable, ContextManager, cast
from urllib.parse import quote

from flask import Response, request, url_for
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_dict_header, parse_range_header
from werkzeug.wsgi import FileWrapper, wrap_file

from api.body_deadline import BodyTimeout
from api.deps import container, login_required, upload_slot
from api.errors import error_response
from api.openapi import BEARER
from api.option_schemas import import_body, label_parameters, upload_body, upload_parameters
from api.schemas import (
    DownloadQuerySchema,
    JobListQuerySchema,
    JobPageSchema,
    LinkRequestSchema,
    LinkSchema,
    UploadAcceptedSchema,
    WebhookDeliverySchema,
)
from api.uploads import MultipartUpload
from core.domain.api_keys import Scope
from core.domain.errors import Busy, InvalidInput, TooLarge, UnsupportedMedia
from core.domain.jobs import LABELS, JobLabels, JobStatus
from core.domain.options import AUDIO_FORMATS, AudioOptions
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
@login_required(Scope.JOBS_WRITE)
@blp.response(202, UploadAcceptedSchema)
@blp.alt_response(400, description="a malformed Idempotency-Key or Content-Length")
@blp.alt_response(404, description="the job made with this Idempotency-Key was deleted")
@blp.alt_response(409, description="a request with this Idempotency-Key is still being received")
@blp.alt_response(413, description="larger than MAX_UPLOAD_MB, or over the QUOTA_STORED_MB quota")
@blp.alt_response(415, description="not multipart, or not a video or audio file")
@blp.alt_response(
    422,
    description="no file part, an empty file, a malformed body, an invalid "
    "option, `quality` with `bitrate`, `end` not after `start`, an option the chosen "
    "`format` does not take (named with the format), an "
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
    parameters=[IDEMPOTENCY_KEY, *upload_parameters(), *label_parameters()],
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
        labels=_Labels(form.fields),
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


class _Labels:
    """The upload's `tag` and `webhook_url` from its form fields or query, checked once (the
    webhook URL's addresses too) when the intake first asks."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        self.checked: JobLabels | None = None

    def __call__(self) -> JobLabels:
        if self.checked is None:
            both = {
                name: ["give it once: as a form field or a query parameter"]
                for name in LABELS
                if name in self.fields and name in request.args
            }
            if both:
                raise InvalidInput("a field was given both ways", {"fields": both})
            given = {name: self.fields.get(name, request.args.get(name)) for name in LABELS}
            labels = JobLabels.parse(given)
            container().webhooks.check_job_url(labels.webhook_url)
            self.checked = labels
        return self.checked


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


IMPORT_BODY_LIMIT = 64 * 1024


@blp.route("/jobs", methods=["POST"])
@login_required(Scope.JOBS_WRITE)
@blp.response(202, UploadAcceptedSchema)
@blp.alt_response(400, description="a malformed Idempotency-Key")
@blp.alt_response(404, description="the job made with this Idempotency-Key was deleted")
@blp.alt_response(409, description="a request with this Idempotency-Key is still being received")
@blp.alt_response(413, description="a body over 64 KiB")
@blp.alt_response(415, description="not application/json")
@blp.alt_response(
    422,
    description="not a JSON object; `url` missing, not http(s), with credentials or over "
    "2000 characters; `tag` over 255 characters; `webhook_url` not http(s); an invalid "
    "option (errors.json names each); or an Idempotency-Key used for another request",
)
@blp.alt_response(429, description="over UPLOAD_RATE_LIMIT or QUOTA_ACTIVE_JOBS (Retry-After)")
@blp.alt_response(503, description="database unavailable")
@blp.doc(security=BEARER, requestBody=import_body(), parameters=[IDEMPOTENCY_KEY])
def import_job(actor):
    """Convert the video at a URL: a fetch worker downloads it (status `fetching`, with
    `fetched_bytes` and `fetch_total`), then it is queued like an upload.

    Only http and https, no credentials in the URL; every address the host resolves to, at
    every redirect (at most 5), must be public. A fetch that fails says why in the job's
    `error`: `url_unreachable`, `http_status`, `too_large`, `timeout`, `not_media` or
    `forbidden_address`. With an `Idempotency-Key` header, a retry of the same request within
    24 h answers with the same job."""
    from core.services.imports import ImportRequest

    services = container()
    if request.mimetype != "application/json":
        raise UnsupportedMedia("send the import as application/json")
    if request.content_length is not None and request.content_length > IMPORT_BODY_LIMIT:
        raise TooLarge(f"the request body is limited to {IMPORT_BODY_LIMIT // 1024} KiB")
    request.max_content_length = IMPORT_BODY_LIMIT
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object with at least `url`")
    errors: dict[str, list[str]] = {}
    url = body.get("url")
    if not isinstance(url, str) or not url:
        errors["url"] = ["required: the http(s) URL of the video"]
    labels = JobLabels()
    try:
        labels = JobLabels.parse(body)
    except InvalidInput as exc:
        errors.update(exc.details.get("fields", {}))
    known = {"url", *LABELS, *AudioOptions.NAMES}
    for name in body:
        if name not in known:
            errors[name] = ["unknown field"]
    given = {
        name: _option_text(body[name]) for name in AudioOptions.NAMES if body.get(name) is not None
    }
    try:
        options = AudioOptions.parse(given)
    except InvalidInput as exc:
        errors.update(exc.details.get("fields", {}))
        options = AudioOptions()
    if errors:
        raise InvalidInput("invalid import: " + ", ".join(sorted(errors)), {"fields": errors})
    services.webhooks.check_job_url(labels.webhook_url)
    received = services.imports.accept(
        actor,
        ImportRequest(url, options, labels),
        key=request.headers.get("Idempotency-Key"),
    )
    return _accepted(received.job)


def _option_text(value: object) -> str:
    """A JSON value as the text an option parses (numbers and strings alike)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


@blp.route("/jobs", methods=["GET"])
@login_required(Scope.JOBS_READ)
@blp.arguments(JobListQuerySchema, location="query")
@blp.response(200, JobPageSchema)
@blp.doc(security=BEARER)
def list_jobs(actor, query):
    """Your jobs, newest first; `status` keeps only the jobs in that status, `tag` only
    those tagged so."""
    status = JobStatus(query["status"]) if query.get("status") else None
    return container().jobs.list(
        actor, query["page"], query["per_page"], status=status, tag=query.get("tag")
    )


MAX_WAIT = 60  # seconds a long poll may hold (Prefer: wait=N)
POLL_AGAIN = "2"  # Retry-After on a job still moving: a polling pace, in seconds
ENDED = frozenset({"done", "failed", "cancelled", "expired"})


def requested_wait() -> int | None:
    """The seconds of `Prefer: wait=N` (RFC 7240), clamped to MAX_WAIT; None when absent or
    not a number (a preference we cannot read is ignored, never an error)."""
    header = request.headers.get("Prefer")
    if not header:
        return None
    value = parse_dict_header(header).get("wait")
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    return min(int(value.strip()[:6]), MAX_WAIT)


def conditional(view: Callable[..., Response]) -> Callable[..., Response]:
    """An ETag from the response body; werkzeug answers 304 when If-None-Match has it. With
    `Prefer: wait=N` and If-None-Match, a long poll: the answer waits until the job changes
    (200 with the new state) or N seconds pass (304), and says so in Preference-Applied."""

    @wraps(view)
    def wrapped(actor: Any, job_id: str) -> Response:
        wait = requested_wait()
        if wait and request.if_none_match:
            response = _long_poll(view, actor, job_id, wait)
        else:
            response = _tagged(view(actor, job_id))
        response.make_conditional(request)
        if response.status_code == 412:
            return error_response(412, "the job has changed since the ETag in If-Match")
        if _status_of(response) not in ENDED:
            response.headers["Retry-After"] = POLL_AGAIN
        response.vary.add("Prefer")
        return response

    return wrapped


def _tagged(response: Response) -> Response:
    response.add_etag()
    return response


def _status_of(response: Response) -> str | None:
    body = response.get_json(silent=True)
    return body.get("status") if isinstance(body, dict) else None


def _long_poll(view: Callable[..., Response], actor: Any, job_id: str, wait: int) -> Response:
    until = time.monotonic() + wait
    with ExitStack() as held:
        try:
            watch = held.enter_context(container().job_streams.watching(actor, job_id))
        except Busy:  # no room to hold the request: answer now, the preference not applied
            return _tagged(view(actor, job_id))
        while True:
            response = _tagged(view(actor, job_id))
            etag, _ = response.get_etag()
            if (
                not request.if_none_match.contains_weak(etag or "")
                or _status_of(response) in ENDED
                or not watch.changed(until)
            ):
                break
    response.headers["Preference-Applied"] = f"wait={wait}"
    return response


@blp.route("/jobs/<job_id>", methods=["GET"])
@login_required(Scope.JOBS_READ)
@conditional
@blp.response(
    200,
    JobSchema,
    headers={
        "ETag": {"description": "changes whenever the job does", "schema": {"type": "string"}},
        "Retry-After": {
            "description": "on a job still queued or converting: seconds to wait before the "
            "next poll (or follow GET /jobs/<id>/events)",
            "schema": {"type": "integer"},
        },
        "Preference-Applied": {
            "description": "`wait=N` when the answer waited (Prefer: wait=N)",
            "schema": {"type": "string"},
        },
    },
)
@blp.alt_response(
    304,
    description="unchanged since the ETag sent in If-None-Match (with Prefer: wait=N, for N s)",
)
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
        },
        {
            "name": "Prefer",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "example": "wait=30"},
            "description": "`wait=N` (RFC 7240) with If-None-Match: a long poll, answered as "
            "soon as the job changes, or after N seconds (at most 60) with 304",
        },
    ],
)
def get_job(actor, job_id):
    """Status, progress, error, sizes, duration and links of a job."""
    return container().jobs.get(actor, job_id)


@blp.route("/jobs/<job_id>/deliveries", methods=["GET"])
@login_required(Scope.JOBS_READ)
@blp.response(200, WebhookDeliverySchema(many=True))
@blp.alt_response(404, description="no such job, or not yours")
@blp.doc(security=BEARER)
def job_deliveries(actor, job_id):
    """The messages sent to this job's own `webhook_url` (attempts, statuses, retries), newest
    first; empty when it has none or no event yet."""
    services = container()
    return services.webhooks.job_deliveries(actor, services.jobs.get(actor, job_id))


@blp.route("/jobs/<job_id>", methods=["DELETE"])
@login_required(Scope.JOBS_WRITE)
@blp.response(204)
@blp.alt_response(404, description="no such job, or not yours")
@blp.doc(security=BEARER)
def delete_job(actor, job_id):
    """Delete a job with its video and MP3."""
    container().jobs.delete(actor, job_id)


@blp.route("/jobs/<job_id>/cancel", methods=["POST"])
@login_required(Scope.JOBS_WRITE)
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
@login_required(Scope.JOBS_WRITE)
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


def _audio_responses() -> dict[str, Any]:
    """200 and 206 of a download of any format: one content type per format."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {fmt.content_type: binary for fmt in AUDIO_FORMATS}
    said = ", ".join(f"{fmt.content_type} ({fmt.name})" for fmt in AUDIO_FORMATS)
    return {
        "200": {
            "description": f"the job's output, typed by its format: {said}",
            "content": content,
        },
        "206": {"description": "a byte range of it", "content": content},
    }


@blp.route("/links/<token>", methods=["GET"])
@blp.alt_response(302, description="S3_PRESIGNED_DOWNLOADS: a presigned URL of the output in S3")
@blp.alt_response(404, description="tampered or unknown link, or its job was deleted")
@blp.alt_response(410, description="the link or the output has expired")
@blp.alt_response(416, description="range not satisfiable")
@blp.doc(responses=_audio_responses())
def link_download(token):
    """Download the output of a signed link, in its format (no token; Range, ETag as GET
    /jobs/<id>/audio)."""
    return stream_download(container().jobs.download_link(token))


@blp.route("/jobs/<job_id>/mp3", methods=["GET"])
@login_required(Scope.JOBS_READ)
@blp.alt_response(200, description="the MP3", content_type="audio/mpeg")
@blp.alt_response(206, description="a byte range of the MP3", content_type="audio/mpeg")
@blp.alt_response(302, description="S3_PRESIGNED_DOWNLOADS: a presigned URL of the MP3 in S3")
@blp.alt_response(304, description="unchanged since the ETag sent in If-None-Match")
@blp.alt_response(412, description="If-Match names another ETag")
@blp.alt_response(404, description="no such job, not yours, or not done")
@blp.alt_response(
    409, description="the job makes another format than mp3: its output is at /jobs/<id>/audio"
)
@blp.alt_response(410, description="the job has expired: its MP3 was deleted")
@blp.alt_response(416, description="range not satisfiable")
@blp.doc(security=BEARER)
def job_mp3(actor, job_id):
    """Download an MP3 job's MP3: HEAD, ETag with If-None-Match (304), Range and If-Range
    (206). A job of another format answers 409 naming /jobs/<id>/audio."""
    services = container()
    return stream_download(services.jobs.download(actor, job_id, mp3_only=True))


@blp.route("/jobs/<job_id>/audio", methods=["GET"])
@login_required(Scope.JOBS_READ)
@blp.alt_response(302, description="S3_PRESIGNED_DOWNLOADS: a presigned URL of the output in S3")
@blp.alt_response(304, description="unchanged since the ETag sent in If-None-Match")
@blp.alt_response(412, description="If-Match names another ETag")
@blp.alt_response(404, description="no such job, not yours, or not done")
@blp.alt_response(410, description="the job has expired: its output was deleted")
@blp.alt_response(416, description="range not satisfiable")
@blp.doc(security=BEARER, responses=_audio_responses())
def job_audio(actor, job_id):
    """Download a job's output in its format (`Content-Type` and the file name's extension
    follow it): HEAD, ETag with If-None-Match (304), Range and If-Range (206)."""
    return stream_download(container().jobs.download(actor, job_id))


@blp.route("/download", methods=["GET"])
@login_required(Scope.JOBS_READ)
@blp.arguments(DownloadQuerySchema, location="query")
@blp.alt_response(302, description="S3_PRESIGNED_DOWNLOADS: a presigned URL of the output in S3")
@blp.alt_response(304, description="unchanged since the ETag sent in If-None-Match")
@blp.alt_response(412, description="If-Match names another ETag")
@blp.alt_response(404, description="no such file, or not yours")
@blp.alt_response(416, description="range not satisfiable")
@blp.doc(security=BEARER, responses=_audio_responses())
def download(actor, query):
    """Download a job's output by its file id (`mp3_fid` of a job), in its format."""
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
            mimetype=item.content_type,
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
