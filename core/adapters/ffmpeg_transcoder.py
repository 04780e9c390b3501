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
from core.adapters.sniffer import HEAD_BYTES, sniff
from core.domain import (
    BITRATES,
    DEFAULT_BITRATE,
    TRUE_PEAK_DBTP,
    AudioOptions,
    AudioTrack,
    Encoded,
    MediaError,
    MediaInfo,
    MediaLimits,
    hours,
)
from core.ports import Transcoder

log = logging.getLogger(__name__)

# Demuxers ffmpeg may use, enforced by ffmpeg itself before a demuxer reads its header.
# Everything that opens other files or URLs, or synthesises audio from text (hls, dash,
# concat, sdp, sbg, tty, image2, avisynth, lavfi, ...), is absent.
ALLOWED_FORMATS = (
    "mov",
    "matroska",
    "avi",
    "wav",
    "w64",
    "aiff",
    "mpegts",
    "mpeg",
    "flv",
    "ogg",
    "asf",
    "flac",
    "aac",
    "mp3",
    "caf",
    "amr",
    "rm",
    "mxf",
)
# Given before every -i: each input gets its own allow-lists.
_PER_INPUT = ["-protocol_whitelist", "file", "-format_whitelist", ",".join(ALLOWED_FORMATS)]
_INPUT = ["-nostdin", "-hide_banner", *_PER_INPUT]
PROBE_TIMEOUT_S = 60.0
STDERR_TAIL_BYTES = 4096
# One frame, at most 600 px wide, as full-range JPEG; one scaler thread (ffmpeg's thread pool
# does not fit under the child's address-space limit).
COVER_FILTER = "[0:v:0]trim=end_frame=1,scale='min(iw,600)':-2:threads=1,format=yuvj420p[cover]"
LIMITER_MARGIN_DB = 1.0  # below TRUE_PEAK_DBTP, for the overshoot of MP3 encoding
LIMITER_RECHECK_DB = 3.0  # a deeper cut than this is measured again (it lowers the loudness)
MAX_CORRECTION_DB = 3.0
_DURATION = re.compile(r"^\s+Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)")
_STREAM = re.compile(
    r"^\s+Stream #0:\d+(?:\[\w+\])?(?:\((\w{1,8})\))?: "
    r"(Audio|Video): ([\w-]+)(.*)$"
)
_CHANNELS = re.compile(
    r", (mono|stereo|2\.1|3\.0|3\.0\(back\)|4\.0|quad|quad\(side\)|3\.1|"
    r"4\.1|5\.0|5\.0\(side\)|5\.1|5\.1\(side\)|6\.0|6\.1|7\.0|7\.1|"
    r"(\d{1,2}) channels)(?=,|$)"
)
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "3.0(back)": 3,
    "4.0": 4,
    "quad": 4,
    "quad(side)": 4,
    "3.1": 4,
    "4.1": 5,
    "5.0": 5,
    "5.0(side)": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.0": 6,
    "6.1": 7,
    "7.0": 7,
    "7.1": 8,
}
_INTEGRATED = re.compile(r"^\s+I:\s+(-?\d+(?:\.\d+)?|-inf) LUFS$")
_PEAK = re.compile(r"^\s+Peak:\s+(-?\d+(?:\.\d+)?|-inf) dBFS$")
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
    duration = None
    video_size = None
    has_video = False
    tracks: list[AudioTrack] = []
    for line in lines[start + 1 :]:
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
        language, kind, codec, rest = stream.groups()
        if kind == "Audio":
            rate = _SAMPLE_RATE.search(rest)
            layout = _CHANNELS.search(rest)
            channels = None
            if layout:
                channels = (
                    int(layout.group(2)) if layout.group(2) else _LAYOUT_CHANNELS[layout.group(1)]
                )
            tracks.append(
                AudioTrack(
                    codec=codec,
                    channels=channels,
                    sample_rate=int(rate.group(1)) if rate else None,
                    language=language if language not in (None, "und") else None,
                )
            )
        elif kind == "Video" and not has_video and "(attached pic)" not in rest:
            has_video = True
            size = _FRAME_SIZE.search(rest)
            video_size = (int(size.group(1)), int(size.group(2))) if size else None
    first = tracks[0] if tracks else None
    return MediaInfo(
        duration=duration,
        has_audio=bool(tracks),
        has_video=has_video,
        audio_codec=first.codec if first else None,
        video_size=video_size,
        sample_rate=first.sample_rate if first else None,
        audio_tracks=tuple(tracks),
    )


def ebur128_summary(stderr: str) -> tuple[float, float] | None:
    """(integrated loudness in LUFS, sample peak in dBFS) from ebur128's summary: the last one,
    printed when the filter closes, after anything of the input's own (metadata is the
    uploader's text). None when there is no complete summary."""
    lines = stderr.splitlines()
    start = max(
        (
            n
            for n, line in enumerate(lines)
            if line.startswith("[Parsed_ebur128_") and line.endswith("] Summary:")
        ),
        default=None,
    )
    if start is None:
        return None
    block = lines[start + 1 : start + 14]
    integrated = next((m for m in map(_INTEGRATED.match, block) if m), None)
    peak = next((m for m in map(_PEAK.match, block) if m), None)
    if integrated is None or peak is None:
        return None
    return float(integrated.group(1)), float(peak.group(1))


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
        self.frames = 0  # video frames written: the cover

    def feed(self, line: str) -> None:
        key, _, value = line.partition("=")
        if key == "frame" and value.isdigit():
            self.frames = int(value)
        elif key in ("out_time_us", "out_time_ms"):
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
        return ChildLimits(
            cpu_seconds=int(seconds * 2) + 10,
            file_bytes=file_bytes,
            memory_bytes=self.limits.memory_bytes,
        )

    def probe(self, path: str) -> MediaInfo:
        """Describe a media file with `ffmpeg -i`; MediaError when it is not one we accept."""
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        if os.path.getsize(path) == 0:
            raise MediaError(MediaError.EMPTY)
        target = "file:" + os.path.abspath(path)
        try:
            outcome = ffmpeg_process.run(
                [*_INPUT, "-i", target],
                self._child_limits(PROBE_TIMEOUT_S, 1 << 20),
                PROBE_TIMEOUT_S,
            )
        except TimedOut:
            raise MediaError(MediaError.NOT_MEDIA, "probe timed out") from None
        info = describe(outcome.stderr, target)
        if info is None:
            raise MediaError(MediaError.NOT_MEDIA, _detail(outcome.stderr))
        return info

    def encode_mp3(
        self,
        src: str,
        dst: str,
        options: AudioOptions,
        source: MediaInfo | None = None,
        on_progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Encoded:
        """Write src's chosen audio track, with the options applied, as an MP3 at dst; nothing
        is left at dst on failure. The audio is copied when it is MP3 already and no option
        changes it. Without `source`, a plain conversion is one ffmpeg run: the ceilings are
        checked on ffmpeg's description of the input as soon as it is printed, and the run is
        stopped there when one is exceeded. A cover or loudness needs the description first
        (loudness gets it from its analysis run)."""
        if options.bitrate is not None and options.bitrate not in BITRATES:
            raise ValueError(
                f"bitrate must be one of {', '.join(BITRATES)}, not {options.bitrate!r}"
            )
        if source is None and options.cover == "frame":
            source = self.probe(src)
        gain = None
        if options.loudness is not None:
            gain, source = self._gain(src, options, source, should_stop)
        if source is None:
            return self._encode_described(src, dst, options, on_progress, should_stop)
        chosen = source.track(options.track)
        self.limits.check(chosen)
        start, end = self._window(options, chosen)
        copy = chosen.audio_codec == "mp3" and not options.needs_encode
        return self._encode(src, dst, options, source, copy, gain, on_progress, should_stop)

    def _encode_described(
        self,
        src: str,
        dst: str,
        options: AudioOptions,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Encoded:
        """One run that describes its input and encodes it; copied when the file is an MP3
        (by its first bytes; by ffmpeg's word once described, else encoded in a second run)."""
        if not os.path.isfile(src):
            raise FileNotFoundError(src)
        if os.path.getsize(src) == 0:
            raise MediaError(MediaError.EMPTY)
        with open(src, "rb") as fh:
            copy = sniff(fh.read(HEAD_BYTES)) == "mp3" and not options.needs_encode
        try:
            return self._encode(src, dst, options, None, copy, None, on_progress, should_stop)
        except _NotCopyable:
            return self._encode(src, dst, options, None, False, None, on_progress, should_stop)

    def _accept(self, options: AudioOptions, copy: bool, info: MediaInfo | None) -> MediaInfo:
        """The chosen track of a described source within every ceiling, or MediaError."""
        if info is None:
            raise MediaError(MediaError.NOT_MEDIA, "ffmpeg did not describe the input")
        chosen = info.track(options.track)
        self.limits.check(chosen)
        self._window(options, chosen)
        if copy and chosen.audio_codec != "mp3":
            raise _NotCopyable()
        return chosen

    def _encode(
        self,
        src: str,
        dst: str,
        options: AudioOptions,
        source: MediaInfo | None,
        copy: bool,
        gain: float | None,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Encoded:
        limits = self.limits
        start, end = options.start or 0.0, options.end
        chosen = source.track(options.track) if source is not None else None
        notes: list[str] = []
        cover = options.cover == "frame" and chosen is not None and chosen.has_video
        if options.cover == "frame" and not cover:
            notes.append(MediaError.NO_COVER)
        target = "file:" + os.path.abspath(src)
        # Undescribed, the source is read at info level: ffmpeg prints its description first.
        args = [*_INPUT, "-loglevel", "error" if chosen else "info", "-y"]
        if cover and chosen is not None:
            # The still comes from a second reading of the same file, seeked 10% in.
            at = 0.1 * chosen.duration if chosen.duration else 1.0
            args += ["-ss", f"{at:.3f}", "-i", target, *_PER_INPUT]
        args += [*_window_args(start, end), "-i", target]
        audio = 1 if cover else 0
        args += ["-map", f"{audio}:a:{options.track}"]
        if cover:
            args += [
                "-filter_complex",
                COVER_FILTER,
                "-map",
                "[cover]",
                "-c:v",
                "mjpeg",
                "-disposition:v",
                "attached_pic",
                "-metadata:s:v",
                "title=Album cover",
                "-metadata:s:v",
                "comment=Cover (front)",
            ]
        else:
            args += ["-vn"]
        args += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]
        args += self._audio_args(options, copy, gain)
        for tag in ("title", "artist", "album"):
            value = getattr(options, tag)
            if value:
                args += ["-metadata", f"{tag}={value}"]
        # An endless or undeclared source stops at the ceiling (and fails below).
        args += [
            "-t",
            f"{limits.max_duration + 1:g}",
            "-f",
            "mp3",
            "-progress",
            "pipe:1",
            "-stats_period",
            "0.25",
            "-nostats",
            "file:" + os.path.abspath(dst),
        ]
        run = _Run(self, options, start, end, chosen, on_progress, should_stop)
        described = (
            None
            if chosen
            else _Description(target, lambda info: run.described(self._accept(options, copy, info)))
        )
        try:
            outcome = ffmpeg_process.run(
                args,
                self._child_limits(run.timeout, limits.max_output_bytes),
                run.timeout,
                on_stdout_line=run.reporter.feed,
                should_stop=run.should_stop,
                stderr_limit=STDERR_TAIL_BYTES,
                keep_stderr_head=False,
                on_stderr_line=described.feed if described else None,
            )
            if described is not None:
                described.finish()
                if run.chosen is None:  # no description at all: not media we can read
                    raise MediaError(MediaError.NOT_MEDIA, _detail(outcome.stderr))
            written = run.reporter.out_seconds
            self._check_outcome(outcome, written, run.expected)
            if cover and run.reporter.frames == 0:
                notes.append(MediaError.NO_FRAME)
        except TimedOut:
            _remove(dst)
            raise MediaError(MediaError.TOO_SLOW, f"no result after {run.timeout:.0f} s") from None
        except BaseException:
            _remove(dst)
            raise
        info = source if source is not None else (described.info if described else None)
        return Encoded(
            duration=round(written, 3),
            mode="copy" if copy else "encode",
            notes=tuple(notes),
            source=info,
        )

    @staticmethod
    def _window(options: AudioOptions, source: MediaInfo) -> tuple[float, float | None]:
        """(start, end) in seconds; MediaError when the window lies outside the source."""
        start, end = options.start or 0.0, options.end
        duration = source.duration
        if duration is not None and (
            start >= duration or (end is not None and end > duration + 0.05)
        ):
            raise MediaError(
                MediaError.WINDOW.format(duration=duration), f"window {start}-{end} of {duration}"
            )
        return start, end

    @staticmethod
    def _audio_args(options: AudioOptions, copy: bool, gain: float | None) -> list[str]:
        if copy:
            return ["-c:a", "copy"]
        args = ["-c:a", "libmp3lame"]
        if options.quality is not None:
            args += ["-q:a", str(options.quality)]
        else:
            args += ["-b:a", options.bitrate or DEFAULT_BITRATE]
        if options.sample_rate is not None:
            args += ["-ar", str(options.sample_rate)]
        if options.channels is not None:
            args += ["-ac", str(options.channels)]
        if gain is not None:
            args += ["-af", _normaliser(gain)]
        return args

    def _gain(
        self,
        src: str,
        options: AudioOptions,
        source: MediaInfo | None,
        should_stop: Callable[[], bool] | None,
    ) -> tuple[float, MediaInfo]:
        """The linear gain (dB) that brings the chosen audio to the target loudness, and the
        source's description. One decode through ebur128 measures it (and describes the source
        when not described yet, checked against the ceilings before it decodes on); only when
        the limiter would then cut peaks by more than LIMITER_RECHECK_DB (its cut lowers the
        loudness) does a second decode measure the gained, limited audio, and the gain is
        corrected once by what is missing."""
        assert options.loudness is not None
        target = options.loudness
        measured, peak, source = self._measure(src, options, source, None, should_stop)
        gain = target - measured
        ceiling = TRUE_PEAK_DBTP - LIMITER_MARGIN_DB
        if peak + gain > ceiling + LIMITER_RECHECK_DB:
            limited, _, _ = self._measure(src, options, source, gain, should_stop)
            gain += min(max(target - limited, 0.0), MAX_CORRECTION_DB)
        return gain, source

    def _measure(
        self,
        src: str,
        options: AudioOptions,
        source: MediaInfo | None,
        gain: float | None,
        should_stop: Callable[[], bool] | None,
    ) -> tuple[float, float, MediaInfo]:
        """(integrated loudness, sample peak, description) of the chosen track within the
        window, after `gain` through the normaliser if given: one decode through ffmpeg's
        ebur128 filter, under the same allow-list and ceilings as the encode."""
        if source is None and os.path.isfile(src) and os.path.getsize(src) == 0:
            raise MediaError(MediaError.EMPTY)
        start, end = options.start or 0.0, options.end
        measure = "ebur128=framelog=quiet:peak=sample"
        chain = measure if gain is None else f"{_normaliser(gain)},{measure}"
        target = "file:" + os.path.abspath(src)
        args = [
            *_INPUT,
            "-loglevel",
            "info",
            "-nostats",
            *_window_args(start, end),
            "-i",
            target,
            "-map",
            f"0:a:{options.track}",
            "-t",
            f"{self.limits.max_duration + 1:g}",
            "-af",
            chain,
            "-f",
            "null",
            "-",
        ]
        chosen = source.track(options.track) if source is not None else None
        if chosen is not None:
            self.limits.check(chosen)
            self._window(options, chosen)
        run = _Run(self, options, start, end, chosen, None, should_stop)
        described = (
            None
            if chosen
            else _Description(
                target, lambda info: run.described(self._accept(options, False, info))
            )
        )
        try:
            outcome = ffmpeg_process.run(
                args,
                self._child_limits(run.timeout, 1 << 20),
                run.timeout,
                should_stop=run.should_stop,
                stderr_limit=STDERR_TAIL_BYTES,
                keep_stderr_head=False,
                on_stderr_line=described.feed if described else None,
            )
        except TimedOut:
            raise MediaError(MediaError.TOO_SLOW, "loudness analysis timed out") from None
        if described is not None:
            described.finish()
            if described.info is None:
                raise MediaError(MediaError.NOT_MEDIA, _detail(outcome.stderr))
            source = described.info
        if outcome.code != 0:
            raise MediaError(MediaError.DAMAGED, _detail(outcome.stderr))
        summary = ebur128_summary(outcome.stderr)
        if summary is None or not summary[0] > -70:  # silence: no gain reaches a target
            raise MediaError(MediaError.SILENT, f"no loudness measured ({summary})")
        assert source is not None
        return summary[0], summary[1], source

    def _check_outcome(
        self, outcome: ffmpeg_process.Outcome, written: float, expected: float | None
    ) -> None:
        limits = self.limits
        if outcome.code == -signal.SIGXFSZ:
            raise MediaError(
                MediaError.TOO_LARGE.format(limit=f"{limits.max_output_bytes // 2**20} MiB")
            )
        if outcome.code in (-signal.SIGXCPU, -signal.SIGKILL):
            raise MediaError(MediaError.TOO_SLOW, f"ffmpeg ended by signal {-outcome.code}")
        if outcome.code != 0:
            raise MediaError(MediaError.DAMAGED, _detail(outcome.stderr))
        if written <= 0:
            raise MediaError(MediaError.DAMAGED, "no audio written")
        if expected is None and written >= limits.max_duration:
            raise MediaError(
                MediaError.TOO_LONG.format(limit=hours(limits.max_duration)),
                "undeclared duration ran past the ceiling",
            )
        if expected is not None:
            tolerance = max(0.5, 0.02 * expected)
            if abs(written - expected) > tolerance:
                raise MediaError(
                    MediaError.DAMAGED,
                    f"{written:.2f} s of audio where {expected:.2f} s were expected",
                )


class _NotCopyable(Exception):
    """The file looked like an MP3, but ffmpeg describes its audio as something else."""


class _Description:
    """ffmpeg's description of our input, read from its stderr as it is printed: the block
    under the header naming exactly `target`. `on_complete` gets it (and may raise, which
    stops the run) as soon as the block has ended."""

    MAX_CHARS = 256 * 1024

    def __init__(self, target: str, on_complete: Callable[[MediaInfo | None], None]):
        self.target = target
        self.on_complete = on_complete
        self.lines: list[str] = []
        self.chars = 0
        self.header = re.compile(r"^Input #0, [\w,]+, from '" + re.escape(target) + r"':$")
        self.in_block = False
        self.done = False
        self.info: MediaInfo | None = None

    def feed(self, line: str) -> None:
        if self.done:
            return
        if not self.in_block:
            self.in_block = bool(self.header.match(line))
        elif not line.startswith(" ") or self.chars > self.MAX_CHARS:
            self._complete()
            return
        if self.in_block:
            self.lines.append(line)
            self.chars += len(line)

    def finish(self) -> None:
        """ffmpeg has ended: a block it was still printing is complete too."""
        if not self.done and self.in_block:
            self._complete()

    def _complete(self) -> None:
        self.done = True
        self.info = describe("\n".join(self.lines), self.target)
        self.on_complete(self.info)


class _Run:
    """One encode or analysis run: its progress, and a deadline that tightens once the
    source's duration is known."""

    def __init__(
        self,
        transcoder: "FFmpegTranscoder",
        options: AudioOptions,
        start: float,
        end: float | None,
        chosen: MediaInfo | None,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ):
        self.transcoder = transcoder
        self.start, self.end = start, end
        self.stop = should_stop
        self.started = time.monotonic()
        longest = transcoder.limits.max_duration - start
        self.longest_timeout = transcoder.timeout_floor + longest / transcoder.min_speed
        self.timeout = self.longest_timeout
        self.chosen: MediaInfo | None = None
        self.expected: float | None = None
        self.reporter = _ProgressReporter(None, on_progress)
        if chosen is not None:
            self.described(chosen)

    def described(self, chosen: MediaInfo) -> None:
        self.chosen = chosen
        duration = chosen.duration
        if duration is None and self.end is None:
            return  # undeclared: the longest deadline, and the -t ceiling
        end = self.end if self.end is not None else duration
        assert end is not None
        length = end - self.start
        self.expected = length
        self.reporter.duration = length
        self.timeout = self.transcoder.timeout_floor + length / self.transcoder.min_speed

    def should_stop(self) -> bool:
        if time.monotonic() - self.started > self.timeout:
            raise TimedOut()
        return self.stop is not None and self.stop()


def _normaliser(gain: float) -> str:
    """A linear gain, then a limiter a little under the true-peak ceiling: alimiter limits
    sample peaks, and MP3 encoding adds some inter-sample overshoot (LIMITER_MARGIN_DB)."""
    ceiling = 10 ** ((TRUE_PEAK_DBTP - LIMITER_MARGIN_DB) / 20)
    return f"volume={gain:.2f}dB,alimiter=limit={ceiling:.4f}:level=disabled:latency=1"


def _window_args(start: float, end: float | None) -> list[str]:
    """Input options that read only [start, end) of the next input (accurate when decoding)."""
    args = ["-ss", f"{start:.3f}"] if start else []
    return args + (["-to", f"{end:.3f}"] if end is not None else [])


def _remove(path: str) -> None:
    if os.path.isfile(path) or os.path.islink(path):
        os.remove(path)
