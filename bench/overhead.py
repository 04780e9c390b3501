"""Targets 4 and 2b: pipeline overhead per job, and no ffmpeg left behind after 20 jobs."""

from __future__ import annotations

import tempfile
import time

from bench import procs
from bench.conversion import direct_ffmpeg
from bench.inputs import CLIP_10S_360P, ensure
from bench.report import Figure, Row, Section, percentile
from bench.stack import BenchStack

OVERHEAD_LIMIT_MS = 150
JOBS = 20
DIRECT_RUNS = 5


def measure(st: BenchStack) -> Section:
    section = Section("Pipeline overhead and leftover processes (targets 4, 2)")
    src = ensure(CLIP_10S_360P)
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as scratch:
        direct_ffmpeg(src, scratch)
        direct = Figure.of([direct_ffmpeg(src, scratch).wall_s for _ in range(DIRECT_RUNS)])
    api = st.client()
    overheads, queue_waits, in_worker = [], [], []
    try:
        for _ in range(JOBS):
            job_id = api.upload_file(src)["job_id"]
            job = st.wait_job(job_id, timeout=120, notified=True)
            if job.status.value != "done":
                raise RuntimeError(f"job {job_id} {job.status.value}: {job.error}")
            total = (job.finished_at - job.created_at).total_seconds()
            overheads.append(total - direct.median)
            queue_waits.append((job.started_at - job.created_at).total_seconds())
            in_worker.append((job.finished_at - job.started_at).total_seconds() - direct.median)
            time.sleep(0.2)  # idle between jobs: each one meets an idle worker
    finally:
        api.close()
    overhead = Figure.of(overheads)
    section.rows.append(
        Row(
            f"4. pipeline overhead, {CLIP_10S_360P.name} job: "
            "(upload done -> done) - direct ffmpeg",
            f"{overhead.fmt('ms', 0, 1000)}; direct ffmpeg wall {direct.median * 1000:.0f} ms",
            f"<= {OVERHEAD_LIMIT_MS} ms",
            overhead.median * 1000 <= OVERHEAD_LIMIT_MS,
        )
    )
    section.details.append(
        f"- {JOBS} sequential jobs of the {CLIP_10S_360P.name} clip; upload done = the job "
        f"row's created_at (inserted after the file is stored), done = finished_at. "
        f"Direct ffmpeg wall {direct.fmt('ms', 0, 1000)}. Split: created -> started (queue "
        f"hand-off) {Figure.of(queue_waits).fmt('ms', 0, 1000)}; started -> finished minus "
        f"direct ffmpeg (probe, encode, store, DB) {Figure.of(in_worker).fmt('ms', 0, 1000)}; "
        f"overhead p90 {percentile(overheads, 90) * 1000:.0f} ms."
    )
    time.sleep(1.0)
    left = procs.ffmpeg_processes(st.all_pids())
    anywhere = procs.ffmpeg_processes()
    section.rows.append(
        Row(
            f"2. ffmpeg processes left after {JOBS} jobs",
            f"{len(left)} under the stack ({len(anywhere)} on the machine)",
            "0",
            not left,
        )
    )
    return section
