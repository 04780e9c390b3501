"""ffmpeg's human-readable output, read only where it names our input: its description of a
media file (whole, or live as it is printed) and ebur128's loudness summary."""

from __future__ import annotations

import re
from typing import Callable

from core.domain.media import AudioTrack, MediaInfo

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


def detail(stderr: str) -> str:
    """ffmpeg's most telling line, for the server log."""
    lines = [_LOG_PREFIX.sub("", raw).strip() for raw in stderr.splitlines()]
    lines = [line for line in lines if line]
    return (lines[0] if lines else "")[:300]


class Description:
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
