"""psutil helpers: the processes of a tree, their CPU seconds and RSS, and a peak-RSS sampler."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

import psutil


def tree(root_pid: int) -> list[psutil.Process]:
    """The root process and every live descendant (empty when the root is gone)."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds per pid: (name, own user+system, reaped children's user+system)."""

    per_pid: dict[int, tuple[str, float, float]]

    @property
    def total(self) -> float:
        return sum(own + kids for _, own, kids in self.per_pid.values())


def cpu_snapshot(root_pids: Iterable[int]) -> CpuSnapshot:
    """User+system seconds of every process in the trees, plus those of their exited children."""
    per_pid: dict[int, tuple[str, float, float]] = {}
    for root in root_pids:
        for proc in tree(root):
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    name = proc.name()
            except psutil.NoSuchProcess:
                continue
            per_pid[proc.pid] = (
                name,
                times.user + times.system,
                times.children_user + times.children_system,
            )
    return CpuSnapshot(per_pid)


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """CPU seconds spent between two snapshots.

    A process that exited in between moved its time into its parent's children counters, so
    the plain difference of the totals is right; a process that appeared started from zero."""
    return after.total - before.total


def tree_rss(root_pids: Iterable[int]) -> int:
    """Sum of the RSS of every process in the trees, in bytes."""
    total = 0
    for root in root_pids:
        for proc in tree(root):
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
    return total


@dataclass
class RssSampler:
    """Polls the summed RSS of some process trees in a thread; `peak` and `start` in bytes."""

    root_pids: list[int]
    interval: float = 0.05
    peak: int = 0
    start: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "RssSampler":
        self.start = self.peak = tree_rss(self.root_pids)
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_rss(self.root_pids))
            self.samples += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, tree_rss(self.root_pids))


def ffmpeg_processes(under: Iterable[int] | None = None) -> list[psutil.Process]:
    """Live or zombie processes named ffmpeg*, optionally only those below the given roots."""
    if under is not None:
        candidates = [p for root in under for p in tree(root)]
    else:
        candidates = list(psutil.process_iter())
    found = []
    for proc in candidates:
        try:
            if proc.name().startswith("ffmpeg"):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def idle_cpu_rate(root_pids: list[int], seconds: float) -> float:
    """CPU seconds per second the trees spend with nothing to do."""
    before = cpu_snapshot(root_pids)
    started = time.monotonic()
    time.sleep(seconds)
    after = cpu_snapshot(root_pids)
    return max(0.0, cpu_delta(before, after)) / (time.monotonic() - started)
