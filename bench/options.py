"""Issue 11's cost targets, measured on the transcoder side by side with bare ffmpeg: a plain
conversion (probe + encode) against `ffmpeg -i IN -vn -c:a libmp3lame -b:a 192k OUT.mp3`, a
stream copy against re-encoding the same MP3, and loudness normalisation against plain."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.conversion import bare_command
from bench.inputs import Clip, ensure
from bench.report import Figure, Row, Section
from core.adapters.ffmpeg.transcoder import FFmpegTranscoder
from core.domain.media import MediaLimits
from core.domain.options import AudioOptions

PLAIN_RATIO_LIMIT = 1.00
COPY_RATIO_LIMIT = 0.05
LOUDNESS_RATIO_LIMIT = 2.0
LIMITS = MediaLimits(
    max_duration=4 * 3600.0,
    min_sample_rate=8000,
    max_output_bytes=600 * 2**20,
    memory_bytes=2048 * 2**20,
)


def children_cpu(action: Callable[[], object]) -> float:
    """User + system seconds of the child processes `action` ran (and reaped)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    action()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def bare(src: Path, out: str) -> None:
    subprocess.run(
        bare_command(src, out),
        check=True,
        timeout=900,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def job(transcoder: FFmpegTranscoder, src: Path, out: str, options: AudioOptions) -> str:
    """What the convert worker runs for a job (no prior probe); returns its mode."""
    return transcoder.encode_audio(str(src), out, options).mode


def mp3_of(src: Path, scratch: str) -> Path:
    """The clip's audio as a 192k MP3: a source the service can copy."""
    path = Path(scratch) / f"{src.stem}.mp3"
    bare(src, str(path))
    return path


def measure(clips: list[Clip], reps: int) -> Section:
    section = Section("Audio options: plain, copy and loudness cost (issue 11)")
    section.details.append(
        "CPU = user+system seconds of the ffmpeg processes of one conversion as the convert "
        "worker runs it (FFmpegTranscoder.encode_audio without a prior probe: one run for a plain "
        "conversion or a copy; loudness adds its ebur128 analysis run), measured by "
        "getrusage(RUSAGE_CHILDREN) around the call; bare = "
        "`ffmpeg -i IN -vn -c:a libmp3lame -b:a 192k OUT.mp3` with the same binary. Runs "
        "alternate, side by side, in one process."
    )
    transcoder = FFmpegTranscoder(LIMITS)
    plain, normalised = AudioOptions(), AudioOptions(loudness=-16.0)
    with tempfile.TemporaryDirectory(prefix="bench-options-") as scratch:
        out = os.path.join(scratch, "out.mp3")
        for clip in clips:
            src = ensure(clip)
            bare(src, out)  # page cache warm for every side
            runs: dict[str, list[float]] = {"bare": [], "plain": [], "loudness": []}
            for _ in range(reps):
                runs["bare"].append(children_cpu(lambda s=src: bare(s, out)))
                runs["plain"].append(children_cpu(lambda s=src: job(transcoder, s, out, plain)))
                runs["loudness"].append(
                    children_cpu(lambda s=src: job(transcoder, s, out, normalised))
                )
            b, p, n = (Figure.of(runs[k]) for k in ("bare", "plain", "loudness"))
            pairs = Figure.of([y / x for x, y in zip(runs["bare"], runs["plain"], strict=True)])
            section.rows.append(
                Row(
                    f"11. plain conversion CPU per job, {clip.name}",
                    f"service {p.fmt('s')}; bare ffmpeg {b.fmt('s')}",
                    f"{p.median / b.median:.2f}x (per pair {pairs.low:.2f}-{pairs.high:.2f}) "
                    f"<= {PLAIN_RATIO_LIMIT:.2f}x",
                    p.median / b.median <= PLAIN_RATIO_LIMIT,
                )
            )
            section.rows.append(
                Row(
                    f"11. loudness -16 LUFS CPU per job, {clip.name}",
                    f"normalised {n.fmt('s')}; plain {p.fmt('s')}",
                    f"{n.median / p.median:.2f}x <= {LOUDNESS_RATIO_LIMIT:.1f}x",
                    n.median / p.median <= LOUDNESS_RATIO_LIMIT,
                )
            )
        src = mp3_of(ensure(clips[0]), scratch)
        copy, encode = [], []
        for _ in range(reps):
            copy.append(children_cpu(lambda: job(transcoder, src, out, AudioOptions())))
            encode.append(
                children_cpu(lambda: job(transcoder, src, out, AudioOptions(bitrate="192k")))
            )
        assert job(transcoder, src, out, AudioOptions()) == "copy"
        c, e = Figure.of(copy), Figure.of(encode)
        section.rows.append(
            Row(
                f"11. stream copy CPU, the {clips[0].name} clip's audio as a 192k MP3",
                f"copy {c.fmt('s', 3)}; re-encode {e.fmt('s')}",
                f"{c.median / e.median * 100:.1f}% <= {COPY_RATIO_LIMIT * 100:.0f}%",
                c.median / e.median <= COPY_RATIO_LIMIT,
            )
        )
    return section
