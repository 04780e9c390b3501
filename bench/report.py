"""Figures (median with min-max), table rows and the Markdown report."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """Repeated measurements of one quantity."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> "Figure":
        if not values:
            raise ValueError("a figure needs at least one value")
        return cls(tuple(float(v) for v in values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def fmt(self, unit: str = "", digits: int = 2, scale: float = 1.0) -> str:
        """'1.23 s (1.10-1.40, n=3)'."""

        def num(value: float) -> str:
            return f"{value * scale:.{digits}f}"

        unit = f" {unit}" if unit else ""
        return f"{num(self.median)}{unit} ({num(self.low)}-{num(self.high)}, n={len(self.values)})"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0-100)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class Row:
    """One line of the table: what was measured, the figure, the ratio or limit, the verdict."""

    target: str
    figure: str
    limit: str
    passed: bool | None  # None: not measured (error) or informational

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "n/a"}[self.passed]


@dataclass
class Section:
    """The result of one measurement: table rows and the details behind them."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def table(rows: list[Row]) -> str:
    lines = [
        "| target | figure: median (min-max, n) | ratio / limit | result |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row.target} | {row.figure} | {row.limit} | {row.verdict} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    except Exception:  # the report still says what it can
        memory = "? GiB"
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


class OtherWork:
    """How much CPU went to work other than this run's (its processes and what they started,
    MySQL and Redis), over the run: /proc/stat's busy time (steal counted: the hypervisor's
    other guests) minus ours. Beside the test suite the load scenario read 1.09x and 1.25x of
    bare ffmpeg, the bare reference losing more to the contention than the service."""

    def __init__(self, servers: Sequence[int] = ()):
        self._roots = [os.getpid(), *servers]
        self._started = time.monotonic()
        self._busy, self._ours = self._busy_now(), self._ours_now()

    @staticmethod
    def _busy_now() -> float:
        import psutil

        t = psutil.cpu_times()
        return (
            sum(t)
            - t.idle
            - getattr(t, "iowait", 0.0)
            - getattr(t, "guest", 0.0)
            - getattr(t, "guest_nice", 0.0)
        )

    def _ours_now(self) -> float:
        """This process's tree and the servers', each with its reaped children's time (the
        ffmpeg runs of a pool)."""
        from bench import procs

        return procs.cpu_snapshot(self._roots).total

    def line(self) -> str:
        """'other work: 0.03 cores on average', with a warning above a quarter of a core."""
        seconds = max(1e-9, time.monotonic() - self._started)
        other = ((self._busy_now() - self._busy) - (self._ours_now() - self._ours)) / seconds
        line = f"other work on this machine during the run: {max(0.0, other):.2f} cores on average"
        if other > BUSY_CORES:
            line += "; **busy machine: this run's ratios are not comparable, do not quote them**"
        return line


BUSY_CORES = 0.25


def render(
    sections: list[Section],
    command: str,
    quick: bool,
    started: datetime,
    seconds: float,
    extra: list[str],
) -> str:
    rows = [row for section in sections for row in section.rows]
    out = [
        "# vid2mp3 benchmark",
        "",
        f"- date: {started.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"(took {seconds / 60:.1f} min)",
        f"- machine: {machine()}",
        f"- command: `{command}`" + (" (quick mode: fewer runs, 60 s input only)" if quick else ""),
        *[f"- {line}" for line in extra],
        "",
        table(rows),
        "",
    ]
    for section in sections:
        if section.details:
            out += [f"## {section.name}", "", *section.details, ""]
    return "\n".join(out)


def write(text: str, path: Path | None = None) -> Path:
    path = path or RESULTS / "latest.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def now() -> datetime:
    return datetime.now(timezone.utc)
