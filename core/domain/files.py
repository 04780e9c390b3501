"""Stored files: the buckets they live in, what the store says of one, and the names files
get."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

# The blob store's buckets: uploads, and outputs (every format's, in the bucket named when
# MP3 was the only one).
VIDEOS, MP3S = "videos", "mp3s"


@dataclass
class Blob:
    """A stored file: its id, size in bytes and metadata."""

    fid: str
    size: int
    content_type: str = "application/octet-stream"
    filename: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def safe_filename(name: str | None, fallback: str = "video") -> str:
    """A file name without directories, control characters or quotes, at most 200 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in "\"'`")
    name = name.strip(" .")[:200]
    return name or fallback


def audio_name(original: str, extension: str = "mp3") -> str:
    """The name an output is downloaded as: the upload's, made safe, with the format's
    extension."""
    stem = os.path.splitext(safe_filename(original))[0] or "audio"
    return f"{stem}.{extension}"


def mp3_name(original: str) -> str:
    """The name an MP3 is downloaded as: the upload's, made safe, with .mp3."""
    return audio_name(original, "mp3")
