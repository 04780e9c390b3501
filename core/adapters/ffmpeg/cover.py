"""An Opus file's cover: Ogg has no picture stream, so the still travels as the Vorbis comment
METADATA_BLOCK_PICTURE (a FLAC PICTURE block in base64), given to ffmpeg in an ffmetadata
file of our own."""

from __future__ import annotations

import base64
import struct

FRONT_COVER = 3  # the FLAC/ID3 picture type
MIME = b"image/jpeg"


def jpeg_size(jpeg: bytes) -> tuple[int, int] | None:
    """(width, height) from a baseline or progressive JPEG's start-of-frame marker."""
    at = 2
    while at + 9 < len(jpeg) and jpeg[at] == 0xFF:
        marker = jpeg[at + 1]
        length = struct.unpack(">H", jpeg[at + 2 : at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", jpeg[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def picture_block(jpeg: bytes) -> bytes:
    """A FLAC PICTURE metadata block body holding jpeg as the front cover."""
    width, height = jpeg_size(jpeg) or (0, 0)
    return b"".join(
        [
            struct.pack(">I", FRONT_COVER),
            struct.pack(">I", len(MIME)),
            MIME,
            struct.pack(">I", 0),  # no description
            struct.pack(">IIII", width, height, 24, 0),  # depth 24 bits, not indexed
            struct.pack(">I", len(jpeg)),
            jpeg,
        ]
    )


def _escaped(value: str) -> str:
    """A value as ffmetadata writes it: =, ;, #, \\ and newlines escaped by a backslash."""
    for special in ("\\", "=", ";", "#", "\n"):
        value = value.replace(special, "\\" + special)
    return value


def ffmetadata(tags: dict[str, str], jpeg: bytes | None) -> str:
    """An ffmetadata file giving these global tags and, with jpeg, the cover as
    METADATA_BLOCK_PICTURE."""
    lines = [";FFMETADATA1"]
    for key, value in tags.items():
        lines.append(f"{key}={_escaped(value)}")
    if jpeg is not None:
        encoded = base64.b64encode(picture_block(jpeg)).decode("ascii")
        lines.append(f"METADATA_BLOCK_PICTURE={_escaped(encoded)}")
    return "\n".join(lines) + "\n"
