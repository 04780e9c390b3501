"""The job as its owner sees it in JSON: the body of GET /jobs/<id> (and of each job listed),
and the `data` of every webhook event. One definition: the API dumps and documents it, the
webhooks render it."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from core.domain.jobs import Job, JobStatus
from core.domain.options import BITRATES, FORMATS


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
            "description": "the bitrate (one of "
            f"{', '.join(BITRATES)}; 128k for opus when not given), V0..V9 for MP3's VBR "
            "quality, or `lossless` for flac and wav"
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
            "description": "copy: a track in the format's codec already (MP3 for mp3, AAC "
            "for m4a, Opus for opus, FLAC for flac, 16-bit PCM for wav) copied as it is, no "
            "option changing the audio",
        },
    )
    notes = fields.List(
        fields.String(),
        metadata={"description": "what the conversion could not do, e.g. no cover without video"},
    )
    format = fields.Function(
        lambda job: job.output.name,
        metadata={"enum": list(FORMATS), "description": "the output's format"},
    )
    content_type = fields.Function(
        lambda job: job.output.content_type,
        metadata={"description": "the output's Content-Type, as /jobs/<id>/audio serves it"},
    )
    output_size = fields.Function(
        lambda job: job.mp3_size,
        allow_none=True,
        metadata={
            "type": "integer",
            "description": "the output's size in bytes, whatever its format",
        },
    )
    mp3_fid = fields.String(
        allow_none=True,
        metadata={"description": "the output's file id (GET /download?fid=), whatever its format"},
    )
    mp3_size = fields.Integer(
        allow_none=True, metadata={"description": "the output's size (named when it was an MP3)"}
    )
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
        done = job.status.value == "done"
        return {
            "self": f"/jobs/{job.id}",
            "audio": f"/jobs/{job.id}/audio" if done else None,
            "mp3": f"/jobs/{job.id}/mp3" if done and job.output.name == "mp3" else None,
        }


_SCHEMA = JobSchema()  # built once: a schema's construction copies every field (~150 us)


def job_json(job: Job) -> dict[str, Any]:
    """The job's public JSON, as a dict."""
    return dict(_SCHEMA.dump(job))
