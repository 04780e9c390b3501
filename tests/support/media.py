"""Generate small test media with the bundled ffmpeg (lavfi testsrc/sine), and inspect MP3
output."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from core.adapters.ffmpeg.process import ffmpeg_exe
from tests.support.wait import scaled

GENERATE_TIMEOUT_S = 120.0
_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]
_AAC = ["-c:a", "aac", "-b:a", "64k"]
# Video and audio codecs per container, from what the bundled ffmpeg can encode.
_VIDEO_CODECS: dict[str, list[str]] = {
    "mp4": _X264 + _AAC,
    "mov": _X264 + _AAC,
    "3gp": _X264 + _AAC + ["-ar", "16000"],
    "mkv": _X264 + _AAC,
    "ts": _X264 + _AAC,
    "flv": _X264 + _AAC,
    "avi": ["-c:v", "mpeg4", "-q:v", "10", "-c:a", "libmp3lame", "-b:a", "64k"],
    "mpg": ["-c:v", "mpeg2video", "-q:v", "10", "-c:a", "mp2", "-b:a", "64k"],
    "wmv": ["-c:v", "msmpeg4", "-q:v", "10", "-c:a", "wmav2", "-b:a", "64k"],
    "ogv": ["-c:v", "libtheora", "-q:v", "3", "-c:a", "libvorbis", "-q:a", "0"],
}
_AUDIO_CODECS: dict[str, list[str]] = {
    "m4a": ["-c:a", "aac", "-b:a", "48k"],
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "0"],
    "opus": ["-c:a", "libopus", "-b:a", "32k"],
    "aac": ["-c:a", "aac", "-b:a", "48k", "-f", "adts"],
}


def run_ffmpeg(*args: str, stdout: int | None = None) -> None:
    """Run the bundled ffmpeg quietly; raise with its stderr on failure."""
    done = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=scaled(GENERATE_TIMEOUT_S),
    )
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {stderr}")


def _video_source(seconds: float, size: str) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}"]


def _audio_source(seconds: float, rate: int = 44100) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}"]


def make_video(
    directory: str | os.PathLike[str],
    seconds: float = 3.0,
    size: str = "160x120",
    fmt: str = "mp4",
    faststart: bool = False,
) -> str:
    """A testsrc video with a 440 Hz tone; mp4/mov keep ffmpeg's default moov-at-end unless
    faststart."""
    if fmt not in _VIDEO_CODECS:
        raise ValueError(f"unsupported test container {fmt!r}; one of {sorted(_VIDEO_CODECS)}")
    suffix = "_faststart" if faststart else ""
    path = Path(directory) / f"video_{seconds:g}s_{size}{suffix}.{fmt}"
    flags = ["-movflags", "+faststart"] if faststart and fmt in ("mp4", "mov", "3gp") else []
    run_ffmpeg(
        *_video_source(seconds, size),
        *_audio_source(seconds),
        *_VIDEO_CODECS[fmt],
        *flags,
        str(path),
    )
    return str(path)


def make_webm(
    directory: str | os.PathLike[str], seconds: float = 3.0, streamed: bool = False
) -> str:
    """A VP8 + Opus WebM; streamed=True writes it to a pipe, as a browser recorder does: no
    duration."""
    path = Path(directory) / f"video_{seconds:g}s{'_streamed' if streamed else ''}.webm"
    args = [
        *_video_source(seconds, "160x120"),
        *_audio_source(seconds, 48000),
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "200k",
        "-c:a",
        "libopus",
        "-b:a",
        "32k",
        "-f",
        "webm",
    ]
    if streamed:
        with open(path, "wb") as out:
            run_ffmpeg(*args, "pipe:1", stdout=out.fileno())
    else:
        run_ffmpeg(*args, str(path))
    return str(path)


def make_streamed_audio_webm(directory: str | os.PathLike[str], seconds: float = 60.0) -> str:
    """Opus audio in a WebM written to a pipe: the container declares no duration."""
    path = os.path.join(directory, f"streamed-{seconds:g}s.webm")
    with open(path, "wb") as out:
        run_ffmpeg(
            *_audio_source(seconds),
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
            "-f",
            "webm",
            "pipe:1",
            stdout=out.fileno(),
        )
    return path


def make_silent_video(directory: str | os.PathLike[str], seconds: float = 3.0) -> str:
    """An H.264 mp4 with no audio stream at all."""
    path = Path(directory) / f"silent_{seconds:g}s.mp4"
    run_ffmpeg(*_video_source(seconds, "160x120"), *_X264, str(path))
    return str(path)


def make_audio_only(
    directory: str | os.PathLike[str], seconds: float = 3.0, fmt: str = "m4a"
) -> str:
    """A 440 Hz tone with no video stream (m4a, wav, mp3, flac, ogg, opus or ADTS aac)."""
    if fmt not in _AUDIO_CODECS:
        raise ValueError(f"unsupported test audio format {fmt!r}; one of {sorted(_AUDIO_CODECS)}")
    path = Path(directory) / f"audio_{seconds:g}s.{fmt}"
    rate = 48000 if fmt == "opus" else 44100
    run_ffmpeg(*_audio_source(seconds, rate), *_AUDIO_CODECS[fmt], str(path))
    return str(path)


def make_truncated_mp4(
    directory: str | os.PathLike[str], fraction: float = 0.4, faststart: bool = False
) -> str:
    """A real 3 s mp4 cut to `fraction` of its bytes (moov at the end is lost unless faststart)."""
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        data = Path(make_video(scratch, 3.0, faststart=faststart)).read_bytes()
    path = Path(directory) / f"truncated{'_faststart' if faststart else ''}.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    return str(path)


def make_text_as_mp4(directory: str | os.PathLike[str]) -> str:
    """A plain text file named .mp4."""
    path = Path(directory) / "notes.mp4"
    path.write_text("These are meeting notes, not a video.\n" * 20, encoding="utf-8")
    return str(path)


def make_empty(directory: str | os.PathLike[str]) -> str:
    """A 0-byte file named .mp4."""
    path = Path(directory) / "empty.mp4"
    path.write_bytes(b"")
    return str(path)


def mp3_duration(path: str | os.PathLike[str]) -> float:
    """Duration in seconds of an audio file, read by moviepy: an oracle independent of our
    ffmpeg adapters."""
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    infos = ffmpeg_parse_infos(str(path))
    if not infos.get("audio_found") or not infos.get("duration"):
        raise AssertionError(f"{path} has no audio with a known duration: {infos}")
    return float(infos["duration"])


def is_mpeg_audio(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with an ID3v2 tag or an MPEG audio frame sync (after the tag)."""
    with open(path, "rb") as f:
        head = f.read(10)
        if head[:3] == b"ID3" and len(head) == 10:
            size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            f.seek(10 + size + (10 if head[5] & 0x10 else 0))
            head = f.read(2)
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def make_two_language_video(directory: str | os.PathLike[str], seconds: float = 4.0) -> str:
    """An mp4 with a video and two audio tracks told apart by their shape: track 0 English,
    mono at 44.1 kHz; track 1 French, stereo at 48 kHz. The file also carries a title and an
    artist of its own (which must not reach the MP3)."""
    path = Path(directory) / f"two_languages_{seconds:g}s.mp4"
    run_ffmpeg(
        *_video_source(seconds, "160x120"),
        *_audio_source(seconds),
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=880:sample_rate=48000:duration={seconds}",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        *_X264,
        *_AAC,
        "-ac:a:1",
        "2",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:a:1",
        "language=fra",
        "-metadata",
        "title=The source's own title",
        "-metadata",
        "artist=Source Artist",
        str(path),
    )
    return str(path)


def make_fade_in_video(directory: str | os.PathLike[str], seconds: float = 5.0) -> str:
    """A bright testsrc video whose first frames are black (a fade in over 0.3 s)."""
    path = Path(directory) / f"fade_in_{seconds:g}s.mp4"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size=320x240:rate=25:duration={seconds},fade=in:st=0:d=0.3",
        *_audio_source(seconds),
        *_X264,
        *_AAC,
        str(path),
    )
    return str(path)


def make_quiet_with_clicks(directory: str | os.PathLike[str], seconds: float = 8.0) -> str:
    """A quiet tone (about -31 LUFS) with a short loud 3 kHz burst every second: normalising it
    to a podcast level would take the bursts far over full scale without a limiter."""
    path = Path(directory) / f"quiet_clicks_{seconds:g}s.wav"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "aevalsrc='0.05*sin(2*PI*440*t)+0.5*sin(2*PI*3000*t)*lt(mod(t\\,1)\\,0.001)'"
        f":s=44100:d={seconds}",
        "-c:a",
        "pcm_s16le",
        str(path),
    )
    return str(path)


def make_mp3_source(directory: str | os.PathLike[str], seconds: float = 4.0) -> str:
    """A 128 kb/s MP3 with tags of its own: a source whose audio can be copied."""
    path = Path(directory) / f"source_{seconds:g}s.mp3"
    run_ffmpeg(
        *_audio_source(seconds),
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        "-metadata",
        "title=Old title",
        "-metadata",
        "album=Old album",
        str(path),
    )
    return str(path)


def loudness(path: str | os.PathLike[str]) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) by ffmpeg's own ebur128 filter."""
    import re

    done = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128=peak=true:framelog=quiet",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        timeout=scaled(GENERATE_TIMEOUT_S),
    )
    text = done.stderr.decode(errors="replace")
    summary = text[text.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, summary
    return float(integrated.group(1)), float(peak.group(1))


_MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG1_RATES = (44100, 48000, 32000)


def mpeg_audio_frames(path: str | os.PathLike[str]) -> bytes:
    """The MPEG-1 Layer III audio frames of an MP3, without its ID3v2 tag, its Xing/Info
    header frame or an ID3v1 tag: what a stream copy must keep byte for byte."""
    data = Path(path).read_bytes()
    if data[:3] == b"ID3":
        data = data[10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]) :]
    if data[-128:-125] == b"TAG":
        data = data[:-128]
    assert data[0] == 0xFF and data[1] & 0xFE == 0xFA, "not MPEG-1 Layer III"
    kbps, rate = _MPEG1_L3_KBPS[data[2] >> 4], _MPEG1_RATES[(data[2] >> 2) & 3]
    first = 144000 * kbps // rate + ((data[2] >> 1) & 1)
    if b"Xing" in data[:first] or b"Info" in data[:first]:
        data = data[first:]
    return data


def make_mp3_video(directory: str | os.PathLike[str], fmt: str, seconds: float = 3.0) -> str:
    """A testsrc video whose audio is a 160 kb/s MP3 track, in mkv, avi, flv or mp4."""
    video = {"mkv": _X264, "mp4": _X264, "flv": _X264, "avi": ["-c:v", "mpeg4", "-q:v", "10"]}
    path = Path(directory) / f"mp3_in_{seconds:g}s.{fmt}"
    run_ffmpeg(
        *_video_source(seconds, "160x120"),
        *_audio_source(seconds),
        *video[fmt],
        "-c:a",
        "libmp3lame",
        "-b:a",
        "160k",
        str(path),
    )
    return str(path)


def audio_packets(
    path: str | os.PathLike[str], track: int = 0, bsf: str | None = None
) -> list[tuple[int, str]]:
    """(size, MD5) of each packet of an audio track as the container holds it, by ffmpeg's
    own `-f framemd5 -c copy`: what a stream copy must keep bit for bit (timestamps left out,
    each container counts time in its own units). `bsf`: through that bitstream filter, as a
    remux into another container does (ADTS headers dropped for MP4)."""
    done = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-map",
            f"0:a:{track}",
            "-c",
            "copy",
            *(["-bsf:a", bsf] if bsf else []),
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        timeout=GENERATE_TIMEOUT_S,
        check=True,
    )
    packets = []
    for line in done.stdout.decode().splitlines():
        if line and not line.startswith("#"):
            fields = [field.strip() for field in line.split(",")]
            packets.append((int(fields[4]), fields[5]))
    return packets


def decoded_duration(path: str | os.PathLike[str]) -> float:
    """Seconds of audio in a file as ffmpeg's decoder counts them (the last `time=` of a
    decode to null), whatever the container declares."""
    import re

    done = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path), "-map", "0:a:0"]
        + ["-f", "null", "-"],
        capture_output=True,
        timeout=GENERATE_TIMEOUT_S,
        check=True,
    )
    times = re.findall(r"time=(\d+):(\d\d):(\d\d\.\d+)", done.stderr.decode())
    h, m, s = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def riff_info(path: str | os.PathLike[str]) -> dict[str, str]:
    """The text chunks of a WAV file's LIST/INFO chunk (RIFF's own tags), read by hand from
    the chunk layout of the RIFF specification."""
    import struct

    data = Path(path).read_bytes()
    found: dict[str, str] = {}
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        body = data[at + 8 : at + 8 + size]
        if kind == b"LIST" and body[:4] == b"INFO":
            sub = 4
            while sub + 8 <= len(body):
                key, length = body[sub : sub + 4], struct.unpack("<I", body[sub + 4 : sub + 8])[0]
                found[key.decode()] = body[sub + 8 : sub + 8 + length].rstrip(b"\0").decode()
                sub += 8 + length + (length & 1)
        at += 8 + size + (size & 1)
    return found
