"""The ffmpeg driver: probe a media file, encode its first audio track to MP3, sniff containers."""
from __future__ import annotations

import ctypes
import functools
import os
import re
import selectors
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from core.domain import BITRATES, MediaError

PROBE_TIMEOUT_S = 60.0
STDERR_TAIL_BYTES = 4096
PROBE_OUTPUT_LIMIT = 1 << 20
# Demuxers that open other files or URLs named inside the upload (playlists, manifests).
_INDIRECT_FORMATS = frozenset({"hls", "applehttp", "dash", "concat", "ffconcat"})
_LOG_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg reports about a media file."""

    duration: float | None
    has_audio: bool
    has_video: bool
    audio_codec: str | None = None
    video_size: tuple[int, int] | None = None


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


PR_SET_PDEATHSIG = 1

# --- running ffmpeg ---------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: Linux kills ffmpeg if its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(args: list[str], timeout: float | None, on_stdout_line: Callable[[str], None] | None,
         stderr_limit: int, keep_stderr_head: bool) -> tuple[int, str]:
    """Run ffmpeg as one child; return (exit code, bounded stderr). The child never outlives this call."""
    deadline = None if timeout is None else time.monotonic() + timeout
    proc = subprocess.Popen([ffmpeg_exe(), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_die_with_parent)
    stderr = bytearray()
    pending = b""
    try:
        with selectors.DefaultSelector() as sel:
            assert proc.stdout is not None and proc.stderr is not None
            sel.register(proc.stdout, selectors.EVENT_READ, "out")
            sel.register(proc.stderr, selectors.EVENT_READ, "err")
            while sel.get_map():
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    raise MediaError(f"ffmpeg timed out after {timeout:g} s")
                for key, _ in sel.select(wait):
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fileobj)
                        continue
                    if key.data == "err":
                        if keep_stderr_head:
                            stderr += data[: max(0, stderr_limit - len(stderr))]
                        else:
                            stderr += data
                            if len(stderr) > stderr_limit:
                                del stderr[:-stderr_limit]
                                del stderr[:stderr.find(b"\n") + 1]  # drop the cut line
                        continue
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    if on_stdout_line is not None:
                        for line in lines:
                            on_stdout_line(line.decode("utf-8", "replace").strip())
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            code = proc.wait(wait)
        except subprocess.TimeoutExpired:
            raise MediaError(f"ffmpeg timed out after {timeout:g} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    return code, stderr.decode("utf-8", "replace")


_GENERIC_LINES = ("Error opening input file", "Error opening output file", "Error opening input files",
                  "Error opening output files", "Conversion failed", "Input #")


def _reason(stderr: str, default: str) -> str:
    """The most telling line of ffmpeg's stderr, without the '[demuxer @ 0x..]' prefixes."""
    lines = [_LOG_PREFIX.sub("", raw).strip() for raw in stderr.splitlines()]
    lines = [line for line in lines if line and "misdetection possible" not in line]
    specific = [line for line in lines if not line.startswith(_GENERIC_LINES)]
    reason = specific[0] if specific else lines[-1] if lines else default
    return reason if len(reason) <= 200 else reason[:197] + "..."


# --- probe ------------------------------------------------------------------------------


_DURATION = re.compile(r"^\s*Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)", re.M)
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (Audio|Video): ([\w-]+)(.*)$", re.M)
_FRAME_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_ATTACHED_PICTURE = "(attached pic)"


def _describe(text: str) -> MediaInfo:
    """Read duration and streams from `ffmpeg -i` output (cover art is not a video)."""
    duration = None
    found = _DURATION.search(text)
    if found and found.group(1) is not None:
        hours, minutes, seconds = found.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    audio_codec = video_size = None
    has_audio = has_video = False
    for kind, codec, rest in _STREAM.findall(text):
        if kind == "Audio" and not has_audio:
            has_audio, audio_codec = True, codec
        elif kind == "Video" and not has_video and _ATTACHED_PICTURE not in rest:
            has_video = True
            size = _FRAME_SIZE.search(rest)
            video_size = (int(size.group(1)), int(size.group(2))) if size else None
    return MediaInfo(duration=duration, has_audio=has_audio, has_video=has_video,
                     audio_codec=audio_codec, video_size=video_size)


def probe(path: str, timeout: float | None = PROBE_TIMEOUT_S) -> MediaInfo:
    """Describe a media file with `ffmpeg -i`; MediaError when ffmpeg cannot read it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    if os.path.getsize(path) == 0:
        raise MediaError("the file is empty")
    _, text = _run(["-nostdin", "-hide_banner", "-protocol_whitelist", "file",
                    "-i", "file:" + os.path.abspath(path)],
                   timeout, None, PROBE_OUTPUT_LIMIT, keep_stderr_head=True)
    header = re.search(r"^Input #0, ([^ ]+), from ", text, re.M)
    if header is None:
        if "misdetection possible" in text:
            # ffmpeg only guessed a format from the file name; its complaint would mislead.
            raise MediaError("not a media file ffmpeg can read")
        raise MediaError("not a media file ffmpeg can read: " + _reason(text, "unknown format"))
    if set(header.group(1).split(",")) & _INDIRECT_FORMATS:
        raise MediaError("playlists and manifests are not accepted; upload the media file itself")
    return _describe(text)


# --- encode -----------------------------------------------------------------------------


class _ProgressReporter:
    """Turns ffmpeg `-progress` lines into throttled percentages of the input duration."""

    def __init__(self, duration: float | None, callback: Callable[[float], None] | None):
        self.duration = duration
        self.callback = callback
        self.last_percent = -1.0
        self.last_time = 0.0
        self.percent = 0.0
        self.out_seconds = 0.0

    def feed(self, line: str) -> None:
        key, _, value = line.partition("=")
        if key in ("out_time_us", "out_time_ms"):
            # Both keys carry microseconds (out_time_ms is misnamed in ffmpeg).
            if value.lstrip("-").isdigit():
                self.out_seconds = max(self.out_seconds, int(value) / 1e6)
                if self.duration:
                    self.percent = min(100.0, self.out_seconds / self.duration * 100)
        elif key == "progress":
            self._emit(final=value == "end")

    def _emit(self, final: bool) -> None:
        if self.callback is None or self.duration is None:
            return
        now = time.monotonic()
        step = self.percent - self.last_percent
        if (final and step > 0) or step >= 1.0 or (step > 0 and now - self.last_time >= 1.0):
            self.last_percent, self.last_time = self.percent, now
            self.callback(self.percent)


def _remove(path: str) -> None:
    if os.path.isfile(path) or os.path.islink(path):
        os.remove(path)


def encode_mp3(src: str, dst: str, bitrate: str = "192k",
               on_progress: Callable[[float], None] | None = None,
               timeout: float | None = None) -> MediaInfo:
    """Encode the first audio track of src into an MP3 at dst; return the MP3's MediaInfo."""
    if bitrate not in BITRATES:
        raise ValueError(f"bitrate must be one of {', '.join(BITRATES)}, not {bitrate!r}")
    if os.path.isdir(dst):
        raise IsADirectoryError(dst)
    dst_dir = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(dst_dir):
        raise FileNotFoundError(dst_dir)
    source = probe(src)
    if not source.has_audio:
        raise MediaError("the video has no audio track")
    reporter = _ProgressReporter(source.duration, on_progress)
    args = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-protocol_whitelist", "file", "-i", "file:" + os.path.abspath(src),
            "-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "libmp3lame", "-b:a", bitrate,
            "-f", "mp3", "-progress", "pipe:1", "-stats_period", "0.25", "-nostats",
            "file:" + os.path.abspath(dst)]
    try:
        code, stderr = _run(args, timeout, reporter.feed, STDERR_TAIL_BYTES, keep_stderr_head=False)
        if code != 0:
            raise MediaError("ffmpeg could not convert this file: "
                             + _reason(stderr, f"exit code {code}"))
        # ffmpeg's last progress report is how much audio it wrote: no second probe needed.
        written = reporter.out_seconds
        if written <= 0 or not os.path.getsize(dst):
            raise MediaError("the conversion produced no playable audio")
        if source.duration is not None:
            tolerance = max(0.5, 0.02 * source.duration)
            if abs(written - source.duration) > tolerance:
                raise MediaError(f"output duration mismatch: {written:.2f} s of audio "
                                 f"from a {source.duration:.2f} s input (truncated or damaged file?)")
    except BaseException:
        _remove(dst)
        raise
    return MediaInfo(duration=round(written, 3), has_audio=True, has_video=False,
                     audio_codec="mp3")


# --- sniff ------------------------------------------------------------------------------

_ISO_TOP_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot",
                            b"uuid", b"junk", b"pict", b"styp", b"sidx", b"moof"})
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
        size, kind = struct.unpack(">I4s", head[pos:pos + 8])
        if kind not in _ISO_TOP_BOXES:
            return None
        seen.append(kind)
        if size == 1:
            if pos + 16 > len(head):
                break
            size = struct.unpack(">Q", head[pos + 8:pos + 16])[0]
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


def _sniff_ts(head: bytes) -> str | None:
    """MPEG-TS (188-byte packets) or M2TS (192-byte packets, 4-byte timestamp first)."""
    for offset, stride in ((0, 188), (4, 192)):
        positions = range(offset, len(head), stride)
        if len(positions) >= 3 and all(head[p] == 0x47 for p in positions):
            return "mpeg-ts"
    return None


def sniff(head: bytes) -> str | None:
    """Short container name when the first bytes of an upload carry a known audio/video signature."""
    head = bytes(head[:4096])
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
        after = head[size:size + 4]
        if after.startswith(b"fLaC"):
            return "flac"
        # Audio after the tag, or a tag longer than the bytes we were given.
        return _sniff_mpeg_audio(head, size) or "mp3"
    if head[0] == 0x47 or (len(head) > 4 and head[4] == 0x47):
        found = _sniff_ts(head)
        if found:
            return found
    if head[0] == 0xFF:
        return _sniff_mpeg_audio(head, 0)
    return None
