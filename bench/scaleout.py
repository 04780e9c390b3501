"""Target 6: jobs per minute with two convert worker processes vs one."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import psutil

from bench.inputs import CLIP_60S_720P, ensure
from bench.report import Figure, Row, Section
from bench.stack import BenchStack, wait_for
from celeryconfig import CONVERT_QUEUE

RATIO_LIMIT = 1.7
BATCH = 8


def _consuming(st: BenchStack) -> set[str]:
    """Names of the workers that consume the convert queue right now."""
    active = st.container.celery.control.inspect(timeout=1.0).active_queues() or {}
    return {
        node for node, queues in active.items() if any(q["name"] == CONVERT_QUEUE for q in queues)
    }


@dataclass(frozen=True)
class Batch:
    jobs_per_min: float
    busy_cores: float  # whole machine, while the batch ran


def one_batch(st: BenchStack, every: set[str], workers: set[str]) -> Batch:
    """Jobs per minute for a batch queued while no worker consumed, then given to `workers`."""
    control = st.container.celery.control
    control.cancel_consumer(CONVERT_QUEUE, destination=list(every), reply=True, timeout=5)
    wait_for(lambda: not (_consuming(st) & every), timeout=20, what="consumers to stop")
    src = ensure(CLIP_60S_720P)
    api = st.client()
    try:
        job_ids = [api.upload_file(src)["job_id"] for _ in range(BATCH)]
    finally:
        api.close()
    machine_before = psutil.cpu_times()
    released = time.time()
    control.add_consumer(CONVERT_QUEUE, destination=list(workers), reply=True, timeout=5)
    wait_for(
        lambda: _consuming(st) & every == workers,
        timeout=10,
        what=f"exactly {sorted(workers)} to consume",
    )
    jobs = [st.wait_job(job_id, timeout=600, interval=0.2) for job_id in job_ids]
    machine_after = psutil.cpu_times()
    failed = [job for job in jobs if job.status.value != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs failed: {failed[0].error}")
    last = max(job.finished_at for job in jobs)
    span = last.timestamp() - released
    idle = (machine_after.idle + machine_after.iowait) - (
        machine_before.idle + machine_before.iowait
    )
    total = sum(machine_after) - sum(machine_before)
    wall = time.time() - released
    return Batch(BATCH / span * 60, (total - idle) / wall)


def measure(st: BenchStack, reps: int) -> Section:
    section = Section("Scale-out (target 6)")
    host = socket.gethostname()
    one, two = {f"convert@{host}"}, {f"convert@{host}", f"convert-2@{host}"}
    single, double = [], []
    st.start_convert_worker(2)
    try:
        for _ in range(reps):
            single.append(one_batch(st, two, one))
            double.append(one_batch(st, two, two))
    finally:
        st.stop("worker-convert-2")
        st.container.celery.control.add_consumer(
            CONVERT_QUEUE, destination=[f"convert@{host}"], reply=True, timeout=5
        )
    s = Figure.of([b.jobs_per_min for b in single])
    d = Figure.of([b.jobs_per_min for b in double])
    ratio = d.median / s.median
    pair = Figure.of([b.jobs_per_min / a.jobs_per_min for a, b in zip(single, double)])
    section.rows.append(
        Row(
            f"6. jobs/min, batches of {BATCH} x {CLIP_60S_720P.name}",
            f"2 workers {d.fmt('/min', 1)}; 1 worker {s.fmt('/min', 1)}",
            f"{ratio:.2f}x (per pair {pair.low:.2f}-{pair.high:.2f}) >= {RATIO_LIMIT}x",
            ratio >= RATIO_LIMIT,
        )
    )
    section.details.append(
        f"- Each batch: the convert consumers are cancelled (`celery control cancel_consumer`), "
        f"{BATCH} jobs are uploaded, then the consumers are added back at once; jobs/min = "
        f"{BATCH} / (last finished_at - release time). The second worker is `python -m "
        f"workers.convert -n convert-2@%h` (concurrency 1 each), started for this test only. "
        f"Whole-machine busy cores while a batch ran (psutil.cpu_times, everything included: "
        f"MySQL, Redis, the bench): 1 worker "
        f"{Figure.of([b.busy_cores for b in single]).fmt('', 2)}, 2 workers "
        f"{Figure.of([b.busy_cores for b in double]).fmt('', 2)} of {os.cpu_count()}."
    )
    return section
