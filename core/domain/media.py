"""What ffmpeg says of a source, what a conversion wrote, and the ceilings of one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from core.domain.errors import MediaError


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of a source, as ffmpeg declares it."""

    codec: str
    channels: int | None = None
    sample_rate: int | None = None
    language: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg reports about a media file (cover art is not a video)."""

    duration: float | None
    has_audio: bool
    has_video: bool
    audio_codec: str | None = None
    video_size: tuple[int, int] | None = None
    sample_rate: int | None = None
    audio_tracks: tuple[AudioTrack, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The job's `source`: duration, audio tracks, video size."""
        return {
            "duration": self.duration,
            "audio_tracks": [asdict(track) for track in self.audio_tracks],
            "video": (
                {"width": self.video_size[0], "height": self.video_size[1]}
                if self.video_size
                else None
            ),
        }

    def track(self, index: int) -> "MediaInfo":
        """This source seen through its audio track `index`; MediaError when there is none."""
        tracks = self.audio_tracks
        if not tracks and index == 0:
            return self
        if index >= len(tracks):
            raise MediaError(
                MediaError.NO_TRACK.format(
                    track=index, count=len(tracks), s="" if len(tracks) == 1 else "s"
                )
            )
        chosen = tracks[index]
        return replace(self, audio_codec=chosen.codec, sample_rate=chosen.sample_rate)


@dataclass(frozen=True)
class Encoded:
    """What one conversion wrote: seconds of audio, `encode` or `copy`, and notes for the user."""

    duration: float
    mode: str
    notes: tuple[str, ...] = ()
    source: MediaInfo | None = None  # the input as ffmpeg described it


@dataclass(frozen=True)
class MediaLimits:
    """The cost ceilings of one conversion."""

    max_duration: float
    min_sample_rate: int
    max_output_bytes: int
    memory_bytes: int

    def check(self, source: MediaInfo) -> None:
        """Refuse a source whose declared properties exceed the ceilings."""
        if not source.has_audio:
            raise MediaError(MediaError.NO_AUDIO)
        if source.sample_rate is not None and source.sample_rate < self.min_sample_rate:
            raise MediaError(MediaError.LOW_SAMPLE_RATE.format(rate=self.min_sample_rate))
        if source.duration is not None and source.duration > self.max_duration:
            raise MediaError(MediaError.TOO_LONG.format(limit=hours(self.max_duration)))


def hours(seconds: float) -> str:
    """'4 h', '90 min' or '45 s': a limit as people say it."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
