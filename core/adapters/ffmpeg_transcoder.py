"""The Transcoder port on ffmpeg: only allow-listed containers, read only what names our input."""
from __future__ import annotations

import logging
import os
import re
import signal
import time
from typing import Callable

from core.adapters import ffmpeg_process
from core.adapters.ffmpeg_process import ChildLimits, TimedOut
from core.domain import BITRATES, MediaError, MediaInfo, MediaLimits, hours
from core.ports import Transcoder

log = logging.getLogger(__name__)

# Demuxers ffmpeg may use, enforced by ffmpeg itself before a demuxer reads its header.
# Everything that opens other files or URLs, or synthesises audio from text (hls, dash,
# concat, sdp, sbg, tty, image2, avisynth, lavfi, ...), is absent.
ALLOWED_FORMATS = ("mov", "matroska", "avi", "wav", "w64", "aiff", "mpegts", "mpeg", "flv", "ogg",
                   "asf", "flac", "aac", "mp3", "caf", "amr", "rm", "mxf")
_INPUT = ["-nostdin", "-hide_banner", "-protocol_whitelist", "file",
          "-format_whitelist", ",".join(ALLOWED_FORMATS)]
PROBE_TIMEOUT_S = 60.0
STDERR_TAIL_BYTES = 4096
_DURATION = re.compile(r"^\s+Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)")
_STREAM = re.compile(r"^\s+Stream #0:\d+\S*: (Audio|Video): ([\w-]+)(.*)$")
_FRAME_SIZE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_SAMPLE_RATE = re.compile(r"\b(\d{1,7}) Hz\b")
_LOG_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")


def describe(text: str, path: str) -> MediaInfo | None:
    """Duration and streams from `ffmpeg -i` output, read only from the block that follows the
    header naming exactly `path`; None when there is no such header."""
    lines = text.splitlines()
    header = re.compile(r"^Input #0, [\w,]+, from '" + re.escape(path) + r"':$")
    start = next((n for n, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    duration = sample_rate = None
    audio_codec = video_size = None
    has_audio = has_video = False
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break  # the end of our input's block
        found = _DURATION.match(line)
        if found:
            if found.group(1) is not None:
                h, m, s = found.groups()
                duration = int(h) * 3600 + int(m) * 60 + float(s)
            continue
        stream = _STREAM.match(line)
        if stream is None:
            continue
        kind, codec, rest = stream.groups()
        if kind == "Audio" and not has_audio:
            has_audio, audio_codec = True, codec
            rate = _SAMPLE_RATE.search(rest)
            sample_rate = int(rate.group(1)) if rate else None
        elif kind == "Video" and not has_video and "(attached pic)" not in rest:
            has_video = True
            size = _FRAME_SIZE.search(rest)
            video_size = (int(size.group(1)), int(size.group(2))) if size else None
    return MediaInfo(duration=duration, has_audio=has_audio, has_video=has_video,
                     audio_codec=audio_codec, video_size=video_size, sample_rate=sample_rate)


def _detail(stderr: str) -> str:
    """ffmpeg's most telling line, for the server log."""
    lines = [_LOG_PREFIX.sub("", raw).strip() for raw in stderr.splitlines()]
    lines = [line for line in lines if line]
    return (lines[0] if lines else "")[:300]


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


class FFmpegTranscoder(Transcoder):
    """Probe and encode with the bundled ffmpeg, each run under the ceilings of `limits`.

    An encode may take `timeout_floor` seconds plus the source's duration over `min_speed`:
    slower than 4x real time is not a conversion, it is an attack or a fault."""

    timeout_floor = 30.0
    min_speed = 4.0

    def __init__(self, limits: MediaLimits):
        self.limits = limits

    def _child_limits(self, seconds: float, file_bytes: int) -> ChildLimits:
        return ChildLimits(cpu_seconds=int(seconds * 2) + 10, file_bytes=file_bytes,
                           memory_bytes=self.limits.memory_bytes)

    def probe(self, path: str) -> MediaInfo:
        """Describe a media file with `ffmpeg -i`; MediaError when it is not one we accept."""
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        if os.path.getsize(path) == 0:
            raise MediaError(MediaError.EMPTY)
        target = "file:" + os.path.abspath(path)
        try:
            outcome = ffmpeg_process.run([*_INPUT, "-i", target],
                                         self._child_limits(PROBE_TIMEOUT_S, 1 << 20),
                                         PROBE_TIMEOUT_S)
        except TimedOut:
            raise MediaError(MediaError.NOT_MEDIA, "probe timed out") from None
        info = describe(outcome.stderr, target)
        if info is None:
            raise MediaError(MediaError.NOT_MEDIA, _detail(outcome.stderr))
        return info

    def encode_mp3(self, src: str, dst: str, bitrate: str, source: MediaInfo,
                   on_progress: Callable[[float], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> MediaInfo:
        """Encode src's first audio track to an MP3 at dst; nothing is left at dst on failure."""
        if bitrate not in BITRATES:
            raise ValueError(f"bitrate must be one of {', '.join(BITRATES)}, not {bitrate!r}")
        limits = self.limits
        limits.check(source)
        longest = source.duration if source.duration is not None else limits.max_duration
        timeout = self.timeout_floor + longest / self.min_speed
        reporter = _ProgressReporter(source.duration, on_progress)
        args = [*_INPUT, "-loglevel", "error", "-y", "-i", "file:" + os.path.abspath(src),
                "-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "libmp3lame", "-b:a", bitrate,
                # An endless or undeclared source stops at the ceiling (and fails below).
                "-t", f"{limits.max_duration + 1:g}",
                "-f", "mp3", "-progress", "pipe:1", "-stats_period", "0.25", "-nostats",
                "file:" + os.path.abspath(dst)]
        try:
            outcome = ffmpeg_process.run(
                args, self._child_limits(timeout, limits.max_output_bytes), timeout,
                on_stdout_line=reporter.feed, should_stop=should_stop,
                stderr_limit=STDERR_TAIL_BYTES, keep_stderr_head=False)
            written = reporter.out_seconds
            self._check_outcome(outcome, written, source)
        except TimedOut:
            _remove(dst)
            raise MediaError(MediaError.TOO_SLOW, f"no result after {timeout:.0f} s") from None
        except BaseException:
            _remove(dst)
            raise
        return MediaInfo(duration=round(written, 3), has_audio=True, has_video=False,
                         audio_codec="mp3")

    def _check_outcome(self, outcome: ffmpeg_process.Outcome, written: float,
                       source: MediaInfo) -> None:
        limits = self.limits
        if outcome.code == -signal.SIGXFSZ:
            raise MediaError(MediaError.TOO_LARGE.format(
                limit=f"{limits.max_output_bytes // 2**20} MiB"))
        if outcome.code in (-signal.SIGXCPU, -signal.SIGKILL):
            raise MediaError(MediaError.TOO_SLOW, f"ffmpeg ended by signal {-outcome.code}")
        if outcome.code != 0:
            raise MediaError(MediaError.DAMAGED, _detail(outcome.stderr))
        if written <= 0:
            raise MediaError(MediaError.DAMAGED, "no audio written")
        if source.duration is None and written >= limits.max_duration:
            raise MediaError(MediaError.TOO_LONG.format(limit=hours(limits.max_duration)),
                             "undeclared duration ran past the ceiling")
        if source.duration is not None:
            tolerance = max(0.5, 0.02 * source.duration)
            if abs(written - source.duration) > tolerance:
                raise MediaError(MediaError.DAMAGED, f"{written:.2f} s of audio from a "
                                                     f"{source.duration:.2f} s input")


def _remove(path: str) -> None:
    if os.path.isfile(path) or os.path.islink(path):
        os.remove(path)
