"""The unit tier's upload: a minimal MP4 head and a submit through the Intake service."""

from __future__ import annotations

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100


def submit(pipeline, actor, data=MP4, name="clip.mp4", options=None):
    """Upload data as name in 64-byte chunks, as the multipart parser hands it over."""
    chunks = [data[i : i + 64] for i in range(0, len(data), 64)]
    return pipeline.intake.submit(actor, name, chunks, options)
