"""Benchmark inputs made with the bundled ffmpeg and cached under bench/.cache/."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from core.adapters.ffmpeg.process import ffmpeg_exe

CACHE = Path(__file__).resolve().parent / ".cache"
GENERATE_TIMEOUT_S = 900


@dataclass(frozen=True)
class Clip:
    """A generated H.264 + AAC MP4: what a phone or a screen recorder would upload."""

    seconds: int
    width: int
    height: int
    video_kbps: int

    @property
    def name(self) -> str:
        return f"{self.seconds}s-{self.height}p"

    @property
    def path(self) -> Path:
        return CACHE / f"clip_{self.seconds}s_{self.width}x{self.height}_{self.video_kbps}k.mp4"


CLIP_60S_720P = Clip(60, 1280, 720, 2500)
CLIP_600S_360P = Clip(600, 640, 360, 800)
CLIP_10S_360P = Clip(10, 640, 360, 800)


def ensure(clip: Clip) -> Path:
    """The clip's path, generating it once: moving noisy test pattern, stereo 48 kHz 128k AAC."""
    if clip.path.is_file():
        return clip.path
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"generating {clip.path.name} (once; cached in {CACHE}) ...", flush=True)
    partial = clip.path.with_suffix(".part.mp4")
    # A tone plus a little noise per channel, so the MP3 encoder does realistic work.
    audio = (
        "aevalsrc=0.3*sin(2*PI*440*t)+0.04*(random(0)-0.5)"
        "|0.3*sin(2*PI*554*t)+0.04*(random(1)-0.5)"
        f":s=48000:d={clip.seconds}"
    )
    video = f"testsrc2=size={clip.width}x{clip.height}:rate=25:duration={clip.seconds}"
    args = [
        ffmpeg_exe(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        video,
        "-f",
        "lavfi",
        "-i",
        audio,
        "-vf",
        "noise=alls=12:allf=t",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-b:v",
        f"{clip.video_kbps}k",
        "-maxrate",
        f"{clip.video_kbps * 6 // 5}k",
        "-bufsize",
        f"{clip.video_kbps * 2}k",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "50",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-shortest",
        str(partial),
    ]
    try:
        done = subprocess.run(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=GENERATE_TIMEOUT_S
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"generating {clip.name} failed: {done.stderr.decode(errors='replace')[-2000:]}"
            )
        os.replace(partial, clip.path)
    finally:
        partial.unlink(missing_ok=True)
    return clip.path


# The smallest ISO BMFF head the upload sniffer accepts: an 'ftyp' box, then one 'mdat' box
# whose 64-bit size covers the rest of the stream.
_FTYP = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def fake_mp4_chunks(total: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """`total` bytes that pass the upload sniffer as MP4 (no playable stream), made lazily."""
    first = _FTYP + b"\x00\x00\x00\x01mdat" + (total - len(_FTYP)).to_bytes(8, "big")
    yield first
    sent = len(first)
    block = bytes(range(256)) * (chunk // 256)
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece
