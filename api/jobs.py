"""Upload a video, watch its job, download the MP3, delete it."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Iterator
from urllib.parse import quote

from flask import Response, request, url_for
from werkzeug.wsgi import wrap_file
from flask_smorest import Blueprint

from api.deps import container, login_required
from api.errors import error_response
from api.openapi import BEARER
from api.schemas import (DownloadQuerySchema, JobListQuerySchema, JobPageSchema, JobSchema,
                         LinkRequestSchema, LinkSchema, UploadAcceptedSchema)
from api.uploads import MultipartUpload
from core.domain import BITRATES, JobStatus, TooLarge, UnsupportedMedia
from core.services.jobs import Download, check_bitrate

blp = Blueprint("jobs", __name__, description="Video to MP3 jobs")

MULTIPART_OVERHEAD = 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
CHUNK = 256 * 1024
IDEMPOTENCY_KEY = {"in": "header", "name": "Idempotency-Key", "required": False,
                   "schema": {"type": "string", "maxLength": 255},
                   "description": "makes a retried upload return the first one's job"}
UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the video"},
        "bitrate": {"type": "string", "enum": list(BITRATES), "default": "192k"}}}}}}


@blp.route("/upload", methods=["POST"])
@login_required
@blp.response(202, UploadAcceptedSchema)
@blp.alt_response(400, description="no file part, empty file, malformed body or Idempotency-Key")
@blp.alt_response(409, description="a request with this Idempotency-Key is still being received")
@blp.alt_response(413, description="larger than MAX_UPLOAD_MB, or over the QUOTA_STORED_MB quota")
@blp.alt_response(415, description="not multipart, or not a video or audio file")
@blp.alt_response(422, description="invalid bitrate, or an Idempotency-Key used for another "
                                   "request")
@blp.alt_response(429, description="over UPLOAD_RATE_LIMIT or QUOTA_ACTIVE_JOBS (Retry-After)")
@blp.alt_response(503, description="storage or database unavailable")
@blp.doc(security=BEARER, requestBody=UPLOAD_BODY, parameters=[IDEMPOTENCY_KEY])
def upload(actor):
    """Upload a video as multipart field `file`; its conversion is queued.

    With an `Idempotency-Key` header, a retry of the same request (same file and options)
    within 24 h answers with the same job and stores nothing."""
    try:
        return _accept_upload(actor)
    except Exception:
        # Read (a bounded amount of) what the client is still sending, so it gets to see
        # the error response instead of a connection reset mid-upload.
        _discard_body(DRAIN_LIMIT)
        raise


def _accept_upload(actor) -> dict:
    services = container()
    limit = services.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"uploads are limited to {limit // 2**20} MiB")
    if request.mimetype != "multipart/form-data" or "boundary" not in request.mimetype_params:
        raise UnsupportedMedia("send multipart/form-data with the video in field 'file'")
    key = request.headers.get("Idempotency-Key")
    intake = services.intake
    prior = intake.reserve_key(actor, key) if key is not None else None
    request.max_content_length = limit + MULTIPART_OVERHEAD
    form = MultipartUpload(request.stream, request.mimetype_params["boundary"].encode())

    def options() -> dict[str, str]:
        return {**request.args.to_dict(), **form.fields}

    if key is not None and prior is not None:
        form.find_file()
        job = intake.replay(actor, prior, form, options)
        return _accepted(job)
    try:
        allowed = intake.admit(actor, request.content_length)
        form.find_file()
        bitrate = request.args.get("bitrate") or form.fields.get("bitrate")
        if bitrate is not None:
            check_bitrate(bitrate)  # fail before the video is read when the field comes first
        chosen = lambda: bitrate or form.fields.get("bitrate")  # noqa: E731
        if key is not None:
            job = intake.submit_keyed(actor, key, form.filename, form, options, bitrate=chosen,
                                      allowed_bytes=allowed)
        else:
            job = intake.submit(actor, form.filename, form, bitrate=chosen,
                                allowed_bytes=allowed)
    except BaseException:
        if key is not None:
            intake.release_key(actor, key)
        raise
    services.metrics.upload_received(job.video_size)
    return _accepted(job)


def _accepted(job) -> dict:
    return {"job_id": job.id, "status": job.status.value,
            "status_url": url_for("jobs.get_job", job_id=job.id)}


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
    except OSError:
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


@blp.route("/jobs/<job_id>", methods=["GET"])
@login_required
@blp.response(200, JobSchema)
@blp.alt_response(404, description="no such job, or not yours")
@blp.doc(security=BEARER)
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
@blp.alt_response(404, description="no such job, not yours, or not done")
@blp.alt_response(416, description="range not satisfiable")
@blp.doc(security=BEARER)
def job_mp3(actor, job_id):
    """Download a job's MP3 (HTTP Range supported)."""
    services = container()
    return stream_download(services.jobs.download(actor, job_id))


@blp.route("/download", methods=["GET"])
@login_required
@blp.arguments(DownloadQuerySchema, location="query")
@blp.alt_response(200, description="the MP3", content_type="audio/mpeg")
@blp.alt_response(206, description="a byte range of the MP3", content_type="audio/mpeg")
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
    size = item.blob.size
    etag = f"{item.blob.fid}-{size}"
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{etag}"',
               "Content-Disposition": content_disposition(item.filename),
               "Cache-Control": "private, max-age=0"}
    if request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    start, stop, status = 0, size, 200
    # If-Range: a range only while the client's copy is still current, else the whole file.
    range_valid = "If-Range" not in request.headers or request.if_range.etag == etag
    if request.range and range_valid:
        span = request.range.range_for_length(size)
        if span is None or request.range.units != "bytes":
            headers["Content-Range"] = f"bytes */{size}"
            response = error_response(416, "range not satisfiable")
            response.headers.update(headers)
            return response
        start, stop = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    opened = container().jobs.open(item)
    reader = opened.__enter__()  # opened before the headers go out, so errors are still JSON
    try:
        reader.seek(start)
        if stop == size and _has_fileno(reader):
            # A file on local disk, read to its end: gunicorn sends it with sendfile(2).
            body = wrap_file(request.environ, reader, CHUNK)
        else:
            body = _RangeBody(reader, stop - start, lambda: opened.__exit__(None, None, None))
    except BaseException:
        opened.__exit__(None, None, None)
        raise
    return Response(body, status=status, headers=headers, mimetype="audio/mpeg",
                    direct_passthrough=True)


def _has_fileno(reader: BinaryIO) -> bool:
    try:
        reader.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False


class _RangeBody:
    """Yields `length` bytes from a reader; the WSGI server's close() releases it."""

    def __init__(self, reader: BinaryIO, length: int, release: Callable[[], None]):
        self._reader = reader
        self._remaining = length
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        while self._remaining > 0:
            data = self._reader.read(min(CHUNK, self._remaining))
            if not data:
                return
            self._remaining -= len(data)
            yield data

    def close(self) -> None:
        self._release()
