"""A byte sniffer: a fast early refusal of uploads that carry no audio/video signature.

It is not the gate: ffmpeg's own format allow-list is. It only spares the storage and the
queue from files that are plainly not media (text, images, archives, manifests)."""

from __future__ import annotations

import struct

from core.ports.media import Sniffer

_ISO_TOP_BOXES = frozenset(
    {
        b"ftyp",
        b"moov",
        b"mdat",
        b"free",
        b"skip",
        b"wide",
        b"pnot",
        b"uuid",
        b"junk",
        b"pict",
        b"styp",
        b"sidx",
        b"moof",
    }
)
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_MXF_KEY = bytes.fromhex("060e2b34020501010d010201")
_MPEG_BITRATE_BAD = 0x0F
_MPEG_SAMPLERATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_L3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)


def _sniff_iso(head: bytes) -> str | None:
    """MP4/MOV/3GP: an 'ftyp' box first, or a walk of known top-level QuickTime boxes."""
    size, kind = struct.unpack(">I4s", head[:8])
    if kind == b"ftyp":
        brand = head[8:12]
        if not 16 <= size <= 4096 or not all(0x20 <= b < 0x7F for b in brand):
            return None
        if brand.startswith((b"3gp", b"3g2")):
            return "3gp"
        return "mov" if brand == b"qt  " else "mp4"
    if all(0x09 <= b < 0x7F for b in head[:4]):
        return None  # a size field that reads as text is text
    pos, seen = 0, []
    while pos + 8 <= len(head):
        size, kind = struct.unpack(">I4s", head[pos : pos + 8])
        if kind not in _ISO_TOP_BOXES:
            return None
        seen.append(kind)
        if size == 1:
            if pos + 16 > len(head):
                break
            size = struct.unpack(">Q", head[pos + 8 : pos + 16])[0]
            if size < 16:
                return None
        elif size == 0:
            break
        elif size < 8:
            return None
        pos += size
    return "mov" if b"moov" in seen or b"mdat" in seen or len(seen) >= 2 else None


def _mpeg_audio_frame(head: bytes, pos: int) -> tuple[str, int] | None:
    """(kind, frame length) of an MPEG audio or ADTS frame header at pos, if it is one."""
    if pos + 4 > len(head) or head[pos] != 0xFF or head[pos + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = head[pos + 1], head[pos + 2]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    if layer == 0:
        if b1 & 0xF6 != 0xF0 or pos + 7 > len(head):
            return None
        length = ((head[pos + 3] & 3) << 11) | (head[pos + 4] << 3) | (head[pos + 5] >> 5)
        return ("aac", length) if ((b2 >> 2) & 0xF) < 13 and length >= 7 else None
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if version == 1 or bitrate_index in (0, _MPEG_BITRATE_BAD) or rate_index == 3:
        return None
    if layer != 1:
        return "mpeg-audio", 0  # layer I/II: no frame-length check
    rate = _MPEG_SAMPLERATES[version][rate_index]
    padding = (b2 >> 1) & 1
    if version == 3:
        length = 144000 * _MPEG1_L3_KBPS[bitrate_index] // rate + padding
    else:
        length = 72000 * _MPEG2_L3_KBPS[bitrate_index] // rate + padding
    return "mp3", length


def _sniff_mpeg_audio(head: bytes, pos: int) -> str | None:
    """MP3 or ADTS AAC starting at pos: the next frame header must follow where the first ends."""
    first = _mpeg_audio_frame(head, pos)
    if first is None:
        return None
    kind, length = first
    if length and pos + length + 4 <= len(head):
        second = _mpeg_audio_frame(head, pos + length)
        if second is None or second[0] != kind:
            return None
    return kind


def _ts_packet_ok(head: bytes, pos: int) -> bool:
    """A transport packet header: sync byte, no reserved scrambling or adaptation values."""
    if head[pos] != 0x47:
        return False
    if pos + 4 > len(head):
        return True  # a packet cut by the end of the head
    flags = head[pos + 3]
    return (flags >> 6) != 1 and (flags >> 4) & 3 != 0


def _sniff_ts(head: bytes) -> str | None:
    """MPEG-TS (188-byte packets) or M2TS (192-byte packets, 4-byte timestamp first): every
    packet well formed, and a program association table (PID 0) among them, as real
    streams start. Text padded with 'G' at the right places has neither."""
    for offset, stride in ((0, 188), (4, 192)):
        positions = range(offset, len(head), stride)
        if len(positions) < 3 or not all(_ts_packet_ok(head, p) for p in positions):
            continue
        has_pat = any(
            p + 3 <= len(head) and head[p + 1] & 0x1F == 0 and head[p + 2] == 0 for p in positions
        )
        if has_pat:
            return "mpeg-ts"
    return None


HEAD_BYTES = 64 * 1024  # enough to see past an ID3 tag with a small cover


def sniff(head: bytes) -> str | None:
    """Short container name when the first bytes of an upload carry a known audio/video
    signature."""
    head = bytes(head[:HEAD_BYTES])
    if len(head) < 4:
        return None
    if len(head) >= 12 and head[4:8] in _ISO_TOP_BOXES:
        found = _sniff_iso(head)
        if found:
            return found
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        doctype = head[:64]
        return "matroska/webm" if b"webm" in doctype or b"matroska" in doctype else None
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and len(head) >= 12:
        return {b"AVI ": "avi", b"AVIX": "avi", b"WAVE": "wav"}.get(head[8:12])
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head.startswith(b"\x00\x00\x01\xba") and len(head) >= 12:
        return "mpeg-ps"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS\x00"):
        return "ogg"
    if head.startswith(_ASF_GUID):
        return "asf"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"ADIF"):
        return "aac"
    if head.startswith(b"caff\x00\x01"):
        return "caf"
    if head.startswith((b"#!AMR\n", b"#!AMR-WB\n")):
        return "amr"
    if head.startswith(b".RMF\x00"):
        return "rm"
    if head.startswith(_MXF_KEY):
        return "mxf"
    if head.startswith(b"ID3") and len(head) >= 10:
        if head[3] not in (2, 3, 4) or any(b & 0x80 for b in head[6:10]):
            return None
        size = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
        if head[5] & 0x10:
            size += 10  # footer
        after = head[size : size + 4]
        if after.startswith(b"fLaC"):
            return "flac"
        # Audio frames must follow the tag within the bytes we were given.
        return _sniff_mpeg_audio(head, size)
    if head[0] == 0x47 or (len(head) > 4 and head[4] == 0x47):
        found = _sniff_ts(head)
        if found:
            return found
    if head[0] == 0xFF:
        return _sniff_mpeg_audio(head, 0)
    return None


class SignatureSniffer(Sniffer):
    head_bytes = HEAD_BYTES

    def sniff(self, head: bytes) -> str | None:
        return sniff(head)
