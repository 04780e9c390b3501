"""The byte sniffer on hand-written container headers and disguised non-media."""

from __future__ import annotations

import pytest

from core.adapters.sniffer import HEAD_BYTES, sniff
from tests.support.hostile import MANIFESTS, padded_like_ts

MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(413)  # MPEG-1 layer III, 128 kb/s, 44.1 kHz: 417 bytes
ADTS_FRAME = b"\xff\xf1\x50\x40\x20\x1f\xfc" + bytes(249)  # AAC LC, 44.1 kHz, mono: 256 bytes
TS_PACKET = b"\x47\x40\x00\x10" + b"\xff" * 184


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41\x00\x00\x00\x08free", "mp4"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08mdat", "mp4"),
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x00", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  \x00\x00\x00\x08wide", "mov"),
        (b"\x00\x00\x00\x18ftyp3gp4\x00\x00\x02\x003gp4isom\x00\x00\x00\x08free", "3gp"),
        (b"\x00\x00\x00\x08wide\x00\x01\x00\x00mdat" + bytes(32), "mov"),
        (b"\x00\x00\x00\x6cmoov\x00\x00\x00\x64mvhd" + bytes(96), "mov"),
        (
            b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm\x42\x87",
            "matroska/webm",
        ),
        (
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska\x42\x87\x81\x04",
            "matroska/webm",
        ),
        (b"RIFF\x24\x80\x00\x00AVI LIST\x00\x10\x00\x00hdrlavih", "avi"),
        (b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00", "wav"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8", "mpeg-ps"),
        (TS_PACKET * 4, "mpeg-ts"),
        (
            b"\x00\x00\x00\x00"
            + TS_PACKET
            + b"\x00\x00\x00\x00"
            + TS_PACKET
            + b"\x00\x00\x00\x00"
            + TS_PACKET,
            "mpeg-ts",
        ),
        (b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00", "flv"),
        (b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00", "ogg"),
        (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c\x00\x10", "asf"),
        (b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00", "flac"),
        (
            b"ID3\x04\x00\x00\x00\x00\x00\x0aTSSE\x00\x00\x00\x00\x00\x00"
            + MP3_FRAME
            + MP3_FRAME[:4],
            "mp3",
        ),
        (MP3_FRAME + MP3_FRAME, "mp3"),
        (ADTS_FRAME + ADTS_FRAME, "aac"),
        (b"FORM\x00\x00\x10\x00AIFFCOMM", "aiff"),
        (b"#!AMR\n\x3c\x00", "amr"),
    ],
)
def test_known_containers_are_named(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00\x00",
        b"hello world, this is a text file named video.mp4\n",
        b"abcdftypisom and then some prose",  # 'ftyp' at offset 4 but a size made of letters
        b"The moov of the mdat is a free wide text.",
        b"<!DOCTYPE html><html><body>not a video</body></html>",
        b'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"></MPD>',
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nsegment0.ts\n",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00video.mp4",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
        b"RIFF\x24\x08\x00\x00WEBPVP8 ",
        b"\x1a\x45\xdf\xa3 but no document type follows",
        b"\xff\xfb\x90\x64" + bytes(413) + b"not a second frame",
        b"G" + b"et the video from the link below. " * 20,  # 'G' = 0x47, the TS sync byte
        b"ID3 tags explained: a text file",
        b"\x00\x00\x00\x01ftypisom",  # impossible ftyp size
        bytes(4096),
        b"ID3\x03\x00\x00\x00\x00\x7f\x7f" + bytes(100),  # a tag and nothing after it: not mp3
        b"ID3\x04\x00\x00\x00\x00\x0aTSSE\x00\x00" + b"#EXTM3U\n" * 20,  # a playlist behind a tag
    ],
)
def test_non_media_is_none(head: bytes) -> None:
    assert sniff(head) is None


def test_only_the_head_counts() -> None:
    assert sniff(b"\x00\x00\x00\x20ftypisom" + bytes(20) + b"x" * (HEAD_BYTES * 2)) == "mp4"


@pytest.mark.parametrize("name", sorted(MANIFESTS))
@pytest.mark.parametrize("offset,stride", [(0, 188), (4, 192)], ids=["ts", "m2ts"])
def test_text_padded_to_look_like_transport_stream_is_refused(
    name: str, offset: int, stride: int
) -> None:
    """Sync bytes alone are not a transport stream: packets need sane headers and a PAT."""
    head = padded_like_ts(MANIFESTS[name], offset, stride)
    assert all(head[p] == 0x47 for p in range(offset, len(head), stride))
    assert sniff(head) is None
