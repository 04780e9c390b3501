"""The job as its owner sees it in JSON: the body of GET /jobs/<id> (and of each job listed),
and the `data` of every webhook event. One definition: the API dumps and documents it, the
webhooks render it."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from core.domain.jobs import Job, JobStatus
from core.domain.options import BITRATES


class JobSchema(Schema):
    """A job as GET /jobs/<id> answers it and a webhook event carries it as `data`."""

    id = fields.String(required=True)
    status = fields.Function(
        lambda job: job.status.value,
        required=True,
        metadata={
            "enum": [status.value for status in JobStatus],
            "description": "fetching (an import by URL being downloaded), queued, converting, "
            "done, failed, cancelled or expired",
        },
    )
    progress = fields.Float(
        required=True,
        metadata={
            "description": "percent of the duration converted; while fetching, percent of "
            "fetch_total downloaded (0 when the server did not say)"
        },
    )
    source_url = fields.String(
        allow_none=True, metadata={"description": "the URL an imported job was fetched from"}
    )
    fetched_bytes = fields.Integer(
        allow_none=True, metadata={"description": "bytes of an import downloaded so far"}
    )
    fetch_total = fields.Integer(
        allow_none=True,
        metadata={"description": "the size of an import as its server announced it, or null"},
    )
    tag = fields.String(allow_none=True, metadata={"description": "your reference for the job"})
    webhook_url = fields.String(
        allow_none=True, metadata={"description": "this job's own webhook receiver"}
    )
    error = fields.String(allow_none=True)
    filename = fields.String(attribute="video_filename")
    video_size = fields.Integer()
    bitrate = fields.String(
        metadata={
            "description": "the CBR bitrate (one of "
            f"{', '.join(BITRATES)}), or V0..V9 for VBR quality"
        }
    )
    options = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "the conversion options, validated and normalised (defaults filled in)"
        },
    )
    source = fields.Dict(
        keys=fields.String(),
        allow_none=True,
        metadata={
            "description": "the source once probed: duration, audio_tracks (codec, channels, "
            "sample_rate, language), video (width, height) or null"
        },
    )
    mode = fields.String(
        allow_none=True,
        metadata={
            "enum": ["encode", "copy"],
            "description": "copy: an MP3 track copied as it is (no option changes the audio)",
        },
    )
    notes = fields.List(
        fields.String(),
        metadata={"description": "what the conversion could not do, e.g. no cover without video"},
    )
    mp3_fid = fields.String(allow_none=True)
    mp3_size = fields.Integer(allow_none=True)
    duration_s = fields.Float(allow_none=True)
    attempts = fields.Integer()
    created_at = fields.DateTime(format="iso")
    updated_at = fields.DateTime(format="iso")
    started_at = fields.DateTime(format="iso", allow_none=True)
    finished_at = fields.DateTime(format="iso", allow_none=True)
    notified_at = fields.DateTime(format="iso", allow_none=True)
    notify_error = fields.String(allow_none=True)
    request_id = fields.String(
        allow_none=True, metadata={"description": "X-Request-ID of the upload"}
    )
    expires_at = fields.DateTime(
        format="iso",
        allow_none=True,
        metadata={
            "description": "when the MP3 will be deleted (RETENTION_SECONDS after it finished)"
        },
    )
    links = fields.Method("_links")

    def _links(self, job: Job) -> dict[str, str | None]:
        return {
            "self": f"/jobs/{job.id}",
            "mp3": f"/jobs/{job.id}/mp3" if job.status.value == "done" else None,
        }


def job_json(job: Job) -> dict[str, Any]:
    """The job's public JSON, as a dict."""
    return dict(JobSchema().dump(job))
