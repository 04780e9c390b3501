"""ffmpeg's command lines: the allow-lists every input gets, and the arguments of an encode
and of a loudness measurement."""

from __future__ import annotations

import os

from core.adapters.ffmpeg.loudness import measure_filter, normaliser
from core.domain.media import MediaInfo
from core.domain.options import AudioOptions

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
PER_INPUT = ["-protocol_whitelist", "file", "-format_whitelist", ",".join(ALLOWED_FORMATS)]
INPUT = ["-nostdin", "-hide_banner", *PER_INPUT]
# One frame, at most 600 px wide, as full-range JPEG; one scaler thread (ffmpeg's thread pool
# does not fit under the child's address-space limit).
COVER_FILTER = "[0:v:0]trim=end_frame=1,scale='min(iw,600)':-2:threads=1,format=yuvj420p[cover]"
# Our own ffmetadata file (an Opus cover's tags): nothing else may be read as it.
TAGS_INPUT = ["-f", "ffmetadata", "-protocol_whitelist", "file", "-format_whitelist", "ffmetadata"]


def cover_at(chosen: MediaInfo) -> float:
    """Where the cover's still is taken: 10% into the source (past a fade-in from black)."""
    return 0.1 * chosen.duration if chosen.duration else 1.0


def frame_args(target: str, chosen: MediaInfo, jpeg: str) -> list[str]:
    """One still of `target`'s video, as the cover filter makes it, to a JPEG file."""
    return [
        *INPUT,
        "-loglevel",
        "error",
        "-y",
        "-ss",
        f"{cover_at(chosen):.3f}",
        "-i",
        target,
        "-filter_complex",
        COVER_FILTER,
        "-map",
        "[cover]",
        "-frames:v",
        "1",
        "-c:v",
        "mjpeg",
        "-f",
        "mjpeg",
        "file:" + os.path.abspath(jpeg),
    ]


def window_args(start: float, end: float | None) -> list[str]:
    """Input options that read only [start, end) of the next input (accurate when decoding)."""
    args = ["-ss", f"{start:.3f}"] if start else []
    return args + (["-to", f"{end:.3f}"] if end is not None else [])


def codec_args(options: AudioOptions) -> list[str]:
    """The encoder of the chosen format, with its own quality options."""
    fmt = options.output
    bitrate = ["-b:a", options.bitrate or fmt.default_bitrate or ""]
    if fmt.name == "mp3":
        quality = ["-q:a", str(options.quality)] if options.quality is not None else bitrate
        return ["-c:a", "libmp3lame", *quality]
    if fmt.name == "m4a":
        return ["-c:a", "aac", "-profile:a", "aac_low", *bitrate]
    if fmt.name == "opus":
        return ["-c:a", "libopus", *bitrate]
    if fmt.name == "flac":
        level = options.compression
        return ["-c:a", "flac", *(["-compression_level", str(level)] if level is not None else [])]
    return ["-c:a", "pcm_s16le"]


# Each format's muxer and its options.
MUXERS = {
    "mp3": ["-f", "mp3"],
    "m4a": ["-f", "mp4", "-movflags", "+faststart"],  # the index first: plays while it loads
    "opus": ["-f", "ogg"],
    "flac": ["-f", "flac"],
    "wav": ["-f", "wav"],
}


def audio_args(options: AudioOptions, copy: bool, gain: float | None) -> list[str]:
    """The audio stream's codec options: copied, or encoded with the options and the gain."""
    if copy:
        return ["-c:a", "copy"]
    args = codec_args(options)
    if options.sample_rate is not None:
        args += ["-ar", str(options.sample_rate)]
    if options.channels is not None:
        args += ["-ac", str(options.channels)]
    if gain is not None:
        args += ["-af", normaliser(gain)]
    return args


def encode_args(
    target: str,
    dst: str,
    options: AudioOptions,
    chosen: MediaInfo | None,
    cover: bool,
    copy: bool,
    gain: float | None,
    max_duration: float,
    tags_file: str | None = None,
) -> list[str]:
    """An encode of `target`'s chosen track (and, for a cover, a frame) to the chosen format
    at dst, its progress on stdout. `tags_file`: an ffmetadata file of ours whose global tags
    the output gets (an Opus cover)."""
    start, end = options.start or 0.0, options.end
    # Undescribed, the source is read at info level: ffmpeg prints its description first.
    args = [*INPUT, "-loglevel", "error" if chosen else "info", "-y"]
    if cover and chosen is not None:
        # The still comes from a second reading of the same file, seeked 10% in.
        args += ["-ss", f"{cover_at(chosen):.3f}", "-i", target, *PER_INPUT]
    args += [*window_args(start, end), "-i", target]
    tags_input = None
    if tags_file is not None:
        tags_input = 2 if cover else 1
        args += [*TAGS_INPUT, "-i", "file:" + os.path.abspath(tags_file)]
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
    tags_from = "-1" if tags_input is None else str(tags_input)
    args += ["-sn", "-dn", "-map_metadata", tags_from, "-map_chapters", "-1"]
    args += audio_args(options, copy, gain)
    for tag in ("title", "artist", "album"):
        value = getattr(options, tag)
        if value:
            args += ["-metadata", f"{tag}={value}"]
    # An endless or undeclared source stops at the ceiling (and the transcoder fails it).
    args += [
        "-t",
        f"{max_duration + 1:g}",
        *MUXERS[options.format],
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.25",
        "-nostats",
        "file:" + os.path.abspath(dst),
    ]
    return args


def measure_args(
    target: str, options: AudioOptions, gain: float | None, max_duration: float
) -> list[str]:
    """A decode of `target`'s chosen track within the window through ebur128 (after `gain`
    through the normaliser if given), its summary on stderr."""
    start, end = options.start or 0.0, options.end
    return [
        *INPUT,
        "-loglevel",
        "info",
        "-nostats",
        *window_args(start, end),
        "-i",
        target,
        "-map",
        f"0:a:{options.track}",
        "-t",
        f"{max_duration + 1:g}",
        "-af",
        measure_filter(gain),
        "-f",
        "null",
        "-",
    ]
