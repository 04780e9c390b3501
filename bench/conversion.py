"""Targets 1 and 2a: CPU seconds of one job across the stack vs a direct ffmpeg; worker peak RSS."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.inputs import Clip, ensure
from bench.report import Figure, Row, Section
from bench.stack import BenchStack
from core.adapters.ffmpeg.process import ffmpeg_exe

CPU_RATIO_LIMIT = 1.10
RSS_LIMIT_MB = 200
SETTLE_S = 0.3  # after the email: the notify task's ack and events


@dataclass(frozen=True)
class DirectRun:
    cpu_s: float
    wall_s: float
    max_rss_kb: int


def bare_command(src: Path | str, out: str) -> list[str]:
    """The reference every figure is compared with: the bare
    `ffmpeg -i IN -vn -c:a libmp3lame -b:a 192k OUT.mp3`."""
    return [ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", "-i", str(src), "-vn",
            "-c:a", "libmp3lame", "-b:a", "192k", out]  # fmt: skip


def direct_ffmpeg(src: Path, scratch: str) -> DirectRun:
    """The bare command, measured with /usr/bin/time -v."""
    out = os.path.join(scratch, "direct.mp3")
    command = bare_command(src, out)
    timer = shutil.which("time", path="/usr/bin:/bin")
    try:
        if timer:
            done = subprocess.run(
                [timer, "-v", *command],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=900,
                check=True,
            )
            fields = dict(
                line.strip().rsplit(": ", 1) for line in done.stderr.splitlines() if ": " in line
            )
            wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"]
            return DirectRun(
                float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]),
                _clock(wall),
                int(fields["Maximum resident set size (kbytes)"]),
            )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900, check=True
        )
        wall_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return DirectRun(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
            wall_s,
            after.ru_maxrss,
        )
    finally:
        if os.path.exists(out):
            os.remove(out)


def _clock(text: str) -> float:
    """'0:01.45' or '1:02:03' in seconds."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


@dataclass(frozen=True)
class StackRun:
    cpu_s: float  # idle rate already subtracted
    by_role: dict[str, float]
    job_s: float  # created_at -> finished_at
    peak_rss: int  # convert worker tree, bytes
    base_rss: int


def stack_job(st: BenchStack, src: Path, idle_rate: float) -> StackRun:
    """Upload one file and wait for its email; CPU of every stack process over that window."""
    roots = st.all_pids()
    api = st.client()
    try:
        with procs.RssSampler(st.convert_pids()) as rss:
            before = procs.cpu_snapshot(roots)
            started = time.monotonic()
            job_id = api.upload_file(src)["job_id"]
            job = st.wait_job(job_id, timeout=900, notified=True, interval=0.1)
            time.sleep(SETTLE_S)
            after = procs.cpu_snapshot(roots)
            window = time.monotonic() - started
    finally:
        api.close()
    if job.status.value != "done":
        raise RuntimeError(f"job {job_id} {job.status.value}: {job.error}")
    return StackRun(
        procs.cpu_delta(before, after) - idle_rate * window,
        _by_role(st, before, after),
        (job.finished_at - job.created_at).total_seconds(),
        rss.peak,
        rss.start,
    )


def _by_role(
    st: BenchStack, before: procs.CpuSnapshot, after: procs.CpuSnapshot
) -> dict[str, float]:
    """CPU seconds split into API, worker Python, ffmpeg (children of pool processes), notify."""
    roles = {
        "api (gunicorn)": 0.0,
        "convert worker (python)": 0.0,
        "ffmpeg": 0.0,
        "notify worker": 0.0,
    }
    convert_roots = set(st.convert_pids())
    for name, root in (
        ("api (gunicorn)", st.api_pid),
        ("notify worker", st.pid("worker-notify")),
        *(("convert", pid) for pid in convert_roots),
    ):
        for proc in procs.tree(root):
            _, own_after, kids_after = after.per_pid.get(proc.pid, ("", 0.0, 0.0))
            _, own_before, kids_before = before.per_pid.get(proc.pid, ("", 0.0, 0.0))
            own, kids = own_after - own_before, kids_after - kids_before
            if name != "convert":
                roles[name] += own + kids
            elif proc.pid in convert_roots:  # the main process: its reaped children were pools
                roles["convert worker (python)"] += own + kids
            elif proc.name().startswith("ffmpeg"):
                continue  # still running: counted when its parent reaps it
            else:  # a pool process: what it reaped were ffmpeg runs
                roles["convert worker (python)"] += own
                roles["ffmpeg"] += kids
    return roles


def measure(st: BenchStack, clips: list[Clip], reps: dict[Clip, int], idle_rate: float) -> Section:
    section = Section("Conversion cost and worker memory (targets 1, 2)")
    section.details.append(
        f"Stack CPU = user+system seconds of every process of the API, the convert worker "
        f"(main, pool, ffmpeg children) and the notify worker from the upload's first byte to "
        f"the job's email, minus the stack's idle rate ({idle_rate * 1000:.1f} ms/s) over that "
        f"window. Direct = `/usr/bin/time -v ffmpeg -i IN -vn -c:a libmp3lame -b:a 192k OUT.mp3`"
        f" with the same binary. Runs alternate direct and stack."
    )
    rss_rows = []
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as scratch:
        for clip in clips:
            src = ensure(clip)
            direct_ffmpeg(src, scratch)  # page cache warm for both sides
            direct, stack = [], []
            for _ in range(reps[clip]):
                direct.append(direct_ffmpeg(src, scratch))
                stack.append(stack_job(st, src, idle_rate))
            d = Figure.of([r.cpu_s for r in direct])
            s = Figure.of([r.cpu_s for r in stack])
            pair = Figure.of([b.cpu_s / a.cpu_s for a, b in zip(direct, stack)])
            ratio = s.median / d.median
            section.rows.append(
                Row(
                    f"1. CPU per job, {clip.name} ({src.stat().st_size / 2**20:.0f} MB)",
                    f"stack {s.fmt('s')}; direct ffmpeg {d.fmt('s')}",
                    f"{ratio:.2f}x (per pair {pair.low:.2f}-{pair.high:.2f})"
                    f" <= {CPU_RATIO_LIMIT:.2f}x",
                    ratio <= CPU_RATIO_LIMIT,
                )
            )
            roles = {k: Figure.of([r.by_role[k] for r in stack]).median for k in stack[0].by_role}
            section.details.append(
                f"- {clip.name}: stack CPU by process (median): "
                + ", ".join(f"{k} {v:.3f} s" for k, v in roles.items())
                + f"; direct ffmpeg wall {Figure.of([r.wall_s for r in direct]).fmt('s')} "
                f"(CPU/wall {d.median / Figure.of([r.wall_s for r in direct]).median:.2f} "
                f"cores), "
                f"max RSS {max(r.max_rss_kb for r in direct) / 1024:.0f} MB; "
                f"job created->finished {Figure.of([r.job_s for r in stack]).fmt('s')}"
            )
            rss_rows.append(
                (
                    clip,
                    Figure.of([r.peak_rss for r in stack]),
                    Figure.of([r.base_rss for r in stack]),
                )
            )
    clip, peak, base = rss_rows[-1]  # the longest input measured
    section.rows.append(
        Row(
            f"2. convert worker tree peak RSS during the {clip.name} job",
            f"{peak.fmt('MB', 0, 1 / 2**20)} (idle {base.median / 2**20:.0f} MB)",
            f"<= {RSS_LIMIT_MB} MB",
            peak.high <= RSS_LIMIT_MB * 2**20,
        )
    )
    section.details.append(
        "- Peak RSS: sum of RSS over the convert worker's main process and all descendants "
        "(pool process, ffmpeg), polled every 50 ms; RSS counts pages shared between the "
        "forked processes once per process. Per input: "
        + "; ".join(f"{c.name} {p.fmt('MB', 0, 1 / 2**20)}" for c, p, _ in rss_rows)
    )
    return section
