"""The Transcoder port on ffmpeg: only allow-listed containers, read only what names our input."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Callable

from core.adapters.ffmpeg import process as ffmpeg_process
from core.adapters.ffmpeg.args import INPUT, encode_args, frame_args, measure_args
from core.adapters.ffmpeg.cover import ffmetadata
from core.adapters.ffmpeg.describe import Description, describe, detail
from core.adapters.ffmpeg.loudness import gain_to_target, measured_loudness
from core.adapters.ffmpeg.process import ChildLimits, TimedOut
from core.adapters.sniffer import HEAD_BYTES, sniff
from core.domain.errors import MediaError
from core.domain.media import Encoded, MediaInfo, MediaLimits, hours
from core.domain.options import AudioOptions
from core.ports.media import Transcoder

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0
# The containers whose audio is likely in a format's codec already: a conversion from one of
# these starts as a copy, from any other as an encode (either switches on ffmpeg's word).
LIKELY_COPIES = {
    "mp3": ("mp3", "avi"),
    "m4a": ("mp4", "mov", "3gp", "matroska/webm", "flv", "mpeg-ts", "aac"),
    "opus": ("matroska/webm", "ogg"),
    "flac": ("flac", "matroska/webm"),
    "wav": ("wav",),
}
STDERR_TAIL_BYTES = 4096
MAX_COVER_BYTES = 4 * 2**20  # a 600 px wide JPEG still is far smaller


# How often a conversion's progress is written, as often as the event streams send it on.
PROGRESS_SECONDS = 0.5


class _ProgressReporter:
    """Turns ffmpeg `-progress` lines into throttled percentages of the input duration."""

    def __init__(self, duration: float | None, callback: Callable[[float], None] | None):
        self.duration = duration
        self.callback = callback
        self.last_percent = -1.0
        self.last_time = time.monotonic()
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
            if value != "end":  # the job's next write (done, or the next step) follows
                self._emit()

    def _emit(self) -> None:
        """At most one percentage every PROGRESS_SECONDS, the first one PROGRESS_SECONDS
        after the start: each is a job write, a read-back and an event."""
        if self.callback is None or self.duration is None:
            return
        now = time.monotonic()
        if self.percent > self.last_percent and now - self.last_time >= PROGRESS_SECONDS:
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
                [*INPUT, "-i", target],
                self._child_limits(PROBE_TIMEOUT_S, 1 << 20),
                PROBE_TIMEOUT_S,
            )
        except TimedOut:
            raise MediaError(MediaError.NOT_MEDIA, "probe timed out") from None
        info = describe(outcome.stderr, target)
        if info is None:
            raise MediaError(MediaError.NOT_MEDIA, detail(outcome.stderr))
        return info

    def encode_audio(
        self,
        src: str,
        dst: str,
        options: AudioOptions,
        source: MediaInfo | None = None,
        on_progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Encoded:
        """Write src's chosen audio track, with the options applied, at dst in the options'
        format; nothing is left at dst on failure. The audio is copied when ffmpeg describes
        the chosen track in the format's codec already (in any container) and no option
        changes it. Without `source`, a plain
        conversion is one ffmpeg run (two when its first guess of copy or encode was wrong):
        the ceilings are checked on ffmpeg's description of the input as soon as it is
        printed, and the run is stopped there when one is exceeded. A cover or loudness needs
        the description first (loudness gets it from its analysis run)."""
        options.check()  # defensively: options built in code are not parsed
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
        self._fits(options, chosen)
        copy = _copies(options, chosen)
        return self._encode(src, dst, options, source, copy, gain, on_progress, should_stop)

    def _encode_described(
        self,
        src: str,
        dst: str,
        options: AudioOptions,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Encoded:
        """One run that describes its input and converts it. Whether the audio is copied is
        decided on ffmpeg's description of the chosen track, whatever the container: the run
        starts as the likelier of copy and encode (by the container in the first bytes), and
        when the description, printed before any audio is written, says otherwise it is
        stopped there and the other is run on that description (the cost of a probe)."""
        if not os.path.isfile(src):
            raise FileNotFoundError(src)
        if os.path.getsize(src) == 0:
            raise MediaError(MediaError.EMPTY)
        with open(src, "rb") as fh:
            container = sniff(fh.read(HEAD_BYTES))
        guess = _copyable(options) and container in LIKELY_COPIES.get(options.format, ())
        try:
            return self._encode(src, dst, options, None, guess, None, on_progress, should_stop)
        except _Switch as switch:
            return self._encode(
                src, dst, options, switch.info, not guess, None, on_progress, should_stop
            )

    def _accept(
        self, options: AudioOptions, copy: bool | None, info: MediaInfo | None
    ) -> MediaInfo:
        """The chosen track of a described source within every ceiling, or MediaError; _Switch
        when `copy` (None: not to be decided) is not what the chosen track allows."""
        if info is None:
            raise MediaError(MediaError.NOT_MEDIA, "ffmpeg did not describe the input")
        chosen = info.track(options.track)
        self.limits.check(chosen)
        self._window(options, chosen)
        self._fits(options, chosen)
        if copy is not None and copy != _copies(options, chosen):
            raise _Switch(info)
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
            notes.append(MediaError.NO_COVER.format(what=options.output.noun))
        target = "file:" + os.path.abspath(src)
        tags_file = None
        if cover and options.format == "opus" and chosen is not None:
            # Ogg has no picture stream: the still goes in as a tag, taken beforehand.
            cover = False
            tags_file = dst + ".tags"
            jpeg = self._still(target, chosen, dst + ".jpg")
            if jpeg is None:
                notes.append(MediaError.NO_FRAME.format(what=options.output.noun))
            try:
                with open(tags_file, "w", encoding="utf-8") as fh:
                    fh.write(ffmetadata({}, jpeg))
            except BaseException:
                _remove(tags_file)
                raise
        args = encode_args(
            target, dst, options, chosen, cover, copy, gain, limits.max_duration, tags_file
        )
        run = _Run(self, options, start, end, chosen, on_progress, should_stop)
        described = (
            None
            if chosen
            else Description(target, lambda info: run.described(self._accept(options, copy, info)))
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
                    raise MediaError(MediaError.NOT_MEDIA, detail(outcome.stderr))
            written = run.reporter.out_seconds
            self._check_outcome(outcome, written, run.expected, options.output.noun)
            if cover and run.reporter.frames == 0:
                notes.append(MediaError.NO_FRAME.format(what=options.output.noun))
        except TimedOut:
            _remove(dst)
            raise MediaError(MediaError.TOO_SLOW, f"no result after {run.timeout:.0f} s") from None
        except BaseException:
            _remove(dst)
            raise
        finally:
            if tags_file is not None:
                _remove(tags_file)
        info = source if source is not None else (described.info if described else None)
        return Encoded(
            duration=round(written, 3),
            mode="copy" if copy else "encode",
            notes=tuple(notes),
            source=info,
        )

    def _still(self, target: str, chosen: MediaInfo, jpeg: str) -> bytes | None:
        """The cover's still as JPEG bytes (None when the video gives none), by one short run
        under the probe's ceilings; the file is removed either way."""
        try:
            ffmpeg_process.run(
                frame_args(target, chosen, jpeg),
                self._child_limits(PROBE_TIMEOUT_S, MAX_COVER_BYTES),
                PROBE_TIMEOUT_S,
                stderr_limit=STDERR_TAIL_BYTES,
            )
            with open(jpeg, "rb") as fh:
                data = fh.read(MAX_COVER_BYTES)
            return data if data[:2] == b"\xff\xd8" else None
        except (TimedOut, OSError):
            return None
        finally:
            _remove(jpeg)

    def _fits(self, options: AudioOptions, chosen: MediaInfo) -> None:
        """A WAV's size follows from the description (16-bit PCM): MediaError before any audio
        is written when it would exceed the output ceiling, rather than at the ceiling."""
        if options.format != "wav" or chosen.duration is None:
            return
        start = options.start or 0.0
        end = options.end if options.end is not None else chosen.duration
        tracks = chosen.audio_tracks
        declared = tracks[options.track].channels if options.track < len(tracks) else None
        channels = options.channels or declared or 2
        rate = options.sample_rate or chosen.sample_rate or 48000
        size = (end - start) * rate * channels * 2
        if size > self.limits.max_output_bytes:
            limit = f"{self.limits.max_output_bytes // 2**20} MiB"
            raise MediaError(
                MediaError.TOO_LARGE.format(what=options.output.noun, limit=limit),
                f"{size / 2**20:.0f} MiB of PCM",
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

    def _gain(
        self,
        src: str,
        options: AudioOptions,
        source: MediaInfo | None,
        should_stop: Callable[[], bool] | None,
    ) -> tuple[float, MediaInfo]:
        """The linear gain (dB) that brings the chosen audio to the target loudness, and the
        source's description. One decode through ebur128 measures it (and describes the source
        when not described yet, checked against the ceilings before it decodes on); a second
        measures the gained, limited audio only when gain_to_target asks for it."""
        assert options.loudness is not None
        measured, peak, described = self._measure(src, options, source, None, should_stop)

        def measure_limited(gain: float) -> float:
            return self._measure(src, options, described, gain, should_stop)[0]

        return gain_to_target(options.loudness, measured, peak, measure_limited), described

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
        target = "file:" + os.path.abspath(src)
        args = measure_args(target, options, gain, self.limits.max_duration)
        chosen = source.track(options.track) if source is not None else None
        if chosen is not None:
            self.limits.check(chosen)
            self._window(options, chosen)
        run = _Run(self, options, start, end, chosen, None, should_stop)
        described = (
            None
            if chosen
            else Description(target, lambda info: run.described(self._accept(options, None, info)))
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
                raise MediaError(MediaError.NOT_MEDIA, detail(outcome.stderr))
            source = described.info
        if outcome.code != 0:
            raise MediaError(MediaError.DAMAGED, detail(outcome.stderr))
        loudness, peak = measured_loudness(outcome.stderr)
        assert source is not None
        return loudness, peak, source

    def _check_outcome(
        self,
        outcome: ffmpeg_process.Outcome,
        written: float,
        expected: float | None,
        what: str = "MP3",
    ) -> None:
        limits = self.limits
        if outcome.code == -signal.SIGXFSZ:
            raise MediaError(
                MediaError.TOO_LARGE.format(
                    what=what, limit=f"{limits.max_output_bytes // 2**20} MiB"
                )
            )
        if outcome.code in (-signal.SIGXCPU, -signal.SIGKILL):
            raise MediaError(MediaError.TOO_SLOW, f"ffmpeg ended by signal {-outcome.code}")
        if outcome.code != 0:
            raise MediaError(MediaError.DAMAGED, detail(outcome.stderr))
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


class _Switch(Exception):
    """ffmpeg's description of the input says the run should copy where it encodes, or the
    other way round."""

    def __init__(self, info: MediaInfo):
        super().__init__("copy decided on the description")
        self.info = info


def _copyable(options: AudioOptions) -> bool:
    """True when no option changes the audio, so a track already in the format's codec can be
    copied as it is."""
    return not options.needs_encode


def _copies(options: AudioOptions, chosen: MediaInfo) -> bool:
    """True when the chosen track is copied: its codec is the format's and no option changes
    the audio."""
    return _copyable(options) and chosen.audio_codec == options.output.copies


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


def _remove(path: str) -> None:
    if os.path.isfile(path) or os.path.islink(path):
        os.remove(path)
