"""Upload a video, watch its job, download the MP3, delete it."""
from __future__ import annotations

import re
from typing import BinaryIO, Callable, Iterator
from urllib.parse import quote

from flask import Response, request, url_for
from werkzeug.wsgi import wrap_file
from flask_smorest import Blueprint

from api.deps import container, login_required
from api.errors import error_response
from api.openapi import BEARER
from api.schemas import (DownloadQuerySchema, JobPageSchema, JobSchema, PageQuerySchema,
                         UploadAcceptedSchema)
from api.uploads import MultipartUpload
from core.domain import (BITRATES, COVERS, LOUDNESS_RANGE, SAMPLE_RATES, TAG_MAX_CHARS,
                         AudioOptions, InvalidInput, TooLarge, UnsupportedMedia)
from core.services.jobs import Download

blp = Blueprint("jobs", __name__, description="Video to MP3 jobs")

MULTIPART_OVERHEAD = 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024
CHUNK = 256 * 1024
_TIME = {"type": "string",
         "pattern": r"^(\d{1,6}(\.\d{1,3})?|\d{1,2}:[0-5]\d:[0-5]\d(\.\d{1,3})?)$"}
_TAG = {"type": "string", "maxLength": TAG_MAX_CHARS}
# The conversion options: multipart fields before the file part, or query parameters.
UPLOAD_OPTIONS: dict[str, dict] = {
    "bitrate": {"type": "string", "enum": list(BITRATES), "default": "192k",
                "description": "constant bitrate; not with `quality`"},
    "quality": {"type": "integer", "minimum": 0, "maximum": 9,
                "description": "VBR quality, 0 best to 9 (LAME -V); not with `bitrate`"},
    "sample_rate": {"type": "integer", "enum": list(SAMPLE_RATES), "description": "Hz"},
    "channels": {"type": "integer", "enum": [1, 2], "description": "1 mono, 2 stereo"},
    "start": {**_TIME, "description": "keep the source from here: seconds or HH:MM:SS(.mmm)"},
    "end": {**_TIME, "description": "keep the source up to here (after `start`); a window "
                                    "outside the source fails the job"},
    "loudness": {"type": "number", "minimum": LOUDNESS_RANGE[0], "maximum": LOUDNESS_RANGE[1],
                 "description": "target integrated loudness in LUFS (EBU R128), true peak "
                                "at most -1 dBTP; omitted: no normalisation"},
    "title": {**_TAG, "description": "ID3 title; default: the file name without extension"},
    "artist": {**_TAG, "description": "ID3 artist"},
    "album": {**_TAG, "description": "ID3 album"},
    "cover": {"type": "string", "enum": list(COVERS), "default": "none",
              "description": "`frame`: a still from about 10% into the video as front cover"},
    "track": {"type": "integer", "minimum": 0, "default": 0,
              "description": "audio track, counting audio tracks from 0"},
}
UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file"], "properties": {
        **UPLOAD_OPTIONS,
        "file": {"type": "string", "format": "binary", "description": "the video"}}},
    "encoding": {"file": {"contentType": "application/octet-stream"}}}}}
UPLOAD_PARAMETERS = [{"in": "query", "name": name, "required": False, "schema": schema,
                      "description": "the same option as the form field; not both"}
                     for name, schema in UPLOAD_OPTIONS.items()]


@blp.route("/upload", methods=["POST"])
@login_required
@blp.response(202, UploadAcceptedSchema)
@blp.alt_response(400, description="no file part, empty file or malformed body")
@blp.alt_response(413, description="larger than MAX_UPLOAD_MB, or over the QUOTA_STORED_MB quota")
@blp.alt_response(415, description="not multipart, or not a video or audio file")
@blp.alt_response(422, description="an invalid option, `quality` with `bitrate`, `end` not after "
                                    "`start`, or an option given both as field and query "
                                    "parameter (details.fields names each)")
@blp.alt_response(429, description="over UPLOAD_RATE_LIMIT or QUOTA_ACTIVE_JOBS (Retry-After)")
@blp.alt_response(503, description="storage or database unavailable")
@blp.doc(security=BEARER, requestBody=UPLOAD_BODY, parameters=UPLOAD_PARAMETERS)
def upload(actor):
    """Upload a video as multipart field `file`, options as fields before it or as query
    parameters; its conversion is queued."""
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
    allowed = services.intake.admit(actor, request.content_length)
    request.max_content_length = limit + MULTIPART_OVERHEAD
    form = MultipartUpload(request.stream, request.mimetype_params["boundary"].encode())
    form.find_file()
    upload_options(form.fields)  # fail before the video is read when the fields come first
    job = services.intake.submit(actor, form.filename, form,
                                 options=lambda: upload_options(form.fields),
                                 allowed_bytes=allowed)
    services.metrics.upload_received(job.video_size)
    return {"job_id": job.id, "status": job.status.value,
            "status_url": url_for("jobs.get_job", job_id=job.id)}


def upload_options(fields: dict[str, str]) -> AudioOptions:
    """The options of this upload from its query and form; 422 for one given both ways."""
    both = {name: ["give it once: as a form field or a query parameter"]
            for name in AudioOptions.NAMES if name in fields and name in request.args}
    try:
        options = AudioOptions.parse({**fields, **request.args.to_dict()})
    except InvalidInput as exc:
        if not both:
            raise
        raise InvalidInput(exc.message, {"fields": {**exc.details["fields"], **both}}) from None
    if both:
        raise InvalidInput("an option was given both as a form field and a query parameter",
                           {"fields": both})
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
    except OSError:
        return


@blp.route("/jobs", methods=["GET"])
@login_required
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, JobPageSchema)
@blp.doc(security=BEARER)
def list_jobs(actor, query):
    """Your jobs, newest first."""
    return container().jobs.list(actor, query["page"], query["per_page"])


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
