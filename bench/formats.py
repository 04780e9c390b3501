"""Issue 25's cost targets: CPU per minute of audio for each output format, the service's
conversion side by side with bare ffmpeg running the same conversion, and an AAC-in-MP4
source to m4a by copy against the same source's MP3 encode."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from bench.inputs import Clip, ensure
from bench.options import LIMITS, children_cpu
from bench.report import Figure, Row, Section
from core.adapters.ffmpeg.process import ffmpeg_exe
from core.adapters.ffmpeg.transcoder import FFmpegTranscoder
from core.domain.options import AudioOptions

SERVICE_RATIO_LIMIT = 1.00
COPY_RATIO_LIMIT = 0.05
# Each conversion as a person would type it: (what the service is asked, bare ffmpeg's codec
# and muxer arguments). The clips' audio is AAC, so m4a with no option is a copy.
CASES: dict[str, tuple[AudioOptions, list[str]]] = {
    "mp3": (AudioOptions(), ["-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3"]),
    "m4a copy": (
        AudioOptions(format="m4a"),
        ["-c:a", "copy", "-f", "mp4", "-movflags", "+faststart"],
    ),
    "m4a encode": (
        AudioOptions(format="m4a", bitrate="192k"),
        ["-c:a", "aac", "-b:a", "192k", "-f", "mp4", "-movflags", "+faststart"],
    ),
    "opus": (AudioOptions(format="opus"), ["-c:a", "libopus", "-b:a", "128k", "-f", "ogg"]),
    "flac": (AudioOptions(format="flac"), ["-c:a", "flac", "-f", "flac"]),
    "wav": (AudioOptions(format="wav"), ["-c:a", "pcm_s16le", "-f", "wav"]),
}  # fmt: skip


def bare(src: Path, codec: list[str], out: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", "-i", str(src), "-vn", *codec, out],
        check=True,
        timeout=900,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(clips: list[Clip], reps: dict[Clip, int]) -> Section:
    section = Section("Formats: CPU per minute of audio, service vs bare ffmpeg (issue 25)")
    section.details.append(
        "CPU = user+system seconds of the ffmpeg processes of one conversion, by "
        "getrusage(RUSAGE_CHILDREN) around it, divided by the clip's minutes. service = "
        "FFmpegTranscoder.encode_audio as the convert worker runs it (no prior probe; the run "
        "that starts as the likelier of copy or encode); bare = `ffmpeg -i IN -vn <codec> <muxer> "
        "OUT` with the same binary: mp3 `-c:a libmp3lame -b:a 192k`, m4a `-c:a copy` or `-c:a "
        "aac -b:a 192k` with `-movflags +faststart`, opus `-c:a libopus -b:a 128k -f ogg`, flac "
        "`-c:a flac`, wav `-c:a pcm_s16le`. The clips' audio is 48 kHz stereo AAC in MP4, so "
        "`format=m4a` with no option is a copy. Runs alternate, side by side, in one process."
    )
    transcoder = FFmpegTranscoder(LIMITS)
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as scratch:
        for clip in clips:
            src = ensure(clip)
            minutes = clip.seconds / 60
            service: dict[str, list[float]] = {name: [] for name in CASES}
            direct: dict[str, list[float]] = {name: [] for name in CASES}
            for name, (options, codec) in CASES.items():
                out = os.path.join(scratch, f"out.{options.output.extension}")
                bare(src, codec, out)  # page cache warm for every side
                mode = transcoder.encode_audio(str(src), out, options).mode
                assert mode == ("copy" if name == "m4a copy" else "encode"), (name, mode)
            for _ in range(reps[clip]):
                for name, (options, codec) in CASES.items():
                    out = os.path.join(scratch, f"out.{options.output.extension}")
                    direct[name].append(
                        children_cpu(lambda s=src, c=codec, o=out: bare(s, c, o)) / minutes
                    )
                    service[name].append(
                        children_cpu(
                            lambda s=src, o=out, a=options: transcoder.encode_audio(str(s), o, a)
                        )
                        / minutes
                    )
            for name in CASES:
                s, b = Figure.of(service[name]), Figure.of(direct[name])
                pairs = Figure.of([y / x for x, y in zip(direct[name], service[name], strict=True)])
                ratio = s.median / b.median
                section.rows.append(
                    Row(
                        f"25. {name} CPU per minute of audio, {clip.name}",
                        f"service {s.fmt('s', 3)}; bare ffmpeg {b.fmt('s', 3)}",
                        f"{ratio:.2f}x (per pair {pairs.low:.2f}-{pairs.high:.2f}) "
                        f"<= {SERVICE_RATIO_LIMIT:.2f}x",
                        ratio <= SERVICE_RATIO_LIMIT,
                    )
                )
            copy, mp3 = Figure.of(service["m4a copy"]), Figure.of(service["mp3"])
            section.rows.append(
                Row(
                    f"25. AAC in MP4 to m4a by copy vs the same source's MP3 encode, {clip.name}",
                    f"copy {copy.fmt('s', 3)}; mp3 encode {mp3.fmt('s', 3)} per minute",
                    f"{copy.median / mp3.median:.3f}x <= {COPY_RATIO_LIMIT:.2f}x",
                    copy.median / mp3.median <= COPY_RATIO_LIMIT,
                )
            )
    return section
