"""`make bench` / `python -m bench [--quick] [--only NAMES | NAME ...]`: measure the targets.

`make bench BENCH_ARGS="load chaos"` runs the sustained-load scenarios alone; add `--quick`
for a small smoke run."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

from bench import (
    api_load,
    conversion,
    formats,
    inputs,
    isolation,
    overhead,
    procs,
    report,
    s3store,
    scaleout,
    streaming,
    sustained,
    tus,
)
from bench import options as audio_options
from bench import stack as bench_stack
from bench.report import Row, Section

MEASUREMENTS = (
    "conversion",
    "options",
    "formats",
    "overhead",
    "isolation",
    "scaleout",
    "streaming",
    "api",
    "tus",
    "load",
    "chaos",
    "s3",
)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer runs and only the 60 s input (a smoke run, not the figures)",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help="measurements to run (same as --only): e.g. `load chaos`",
    )
    parser.add_argument(
        "--only",
        default=",".join(MEASUREMENTS),
        help=f"comma-separated subset of {', '.join(MEASUREMENTS)}",
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent clients of the load and chaos scenarios"
    )
    parser.add_argument(
        "--load-jobs",
        type=int,
        default=None,
        metavar="N",
        help="jobs of the load scenario (default 108, 12 with --quick; issue 15 used 36)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample the stack with py-spy during the load scenario into DIR",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where the Markdown report goes (default: bench/results/latest.md, "
        "or latest-<names>.md for a subset)",
    )
    args = parser.parse_args(argv)
    if args.scenarios:
        args.only = ",".join(args.scenarios)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    if args.output is None:
        subset = [name for name in MEASUREMENTS if name in args.only]
        suffix = "" if len(subset) == len(MEASUREMENTS) else "-" + "-".join(subset)
        args.output = report.RESULTS / f"latest{suffix}.md"
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`: processes stop, names go


def main(argv: list[str]) -> int:
    args = _parse(argv)
    other_work = report.OtherWork(sustained.shared_server_pids())
    signal.signal(signal.SIGTERM, _terminate)
    quick = args.quick
    if quick:
        print("QUICK MODE: fewer runs, 60 s input only; not the figures to quote.", flush=True)
    clips = [inputs.CLIP_60S_720P] if quick else [inputs.CLIP_60S_720P, inputs.CLIP_600S_360P]
    needed = {inputs.CLIP_10S_360P}
    if set(args.only) - {"load", "chaos"}:
        needed |= {*clips, inputs.CLIP_60S_720P}
    if {"load", "chaos"} & set(args.only):
        needed.add(sustained.inputs_for(quick))
    for clip in needed:
        inputs.ensure(clip)
    started_at, started = report.now(), time.monotonic()
    reps = 3
    sections: list[Section] = []
    extra: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="vid2mp3-bench-") as tmp,
        bench_stack.running(Path(tmp)) as st,
    ):
        print(f"stack up on port {st.port} (logs in {tmp}/logs)", flush=True)
        warm = st.client()
        try:  # the first job pays one-off imports in the pool process
            st.wait_job(
                warm.upload_file(inputs.ensure(inputs.CLIP_10S_360P))["job_id"], 120, notified=True
            )
        finally:
            warm.close()
        time.sleep(1)
        idle_rate = procs.idle_cpu_rate(st.all_pids(), 5.0)
        extra.append(f"stack idle CPU: {idle_rate * 1000:.1f} ms per second (all its processes)")
        steps: dict[str, Callable[[], Section]] = {
            # Short jobs are noisier (ffmpeg's own CPU time varies by +-10 % run to run here).
            "conversion": lambda: conversion.measure(
                st, clips, {c: 3 if quick or c.seconds > 60 else 5 for c in clips}, idle_rate
            ),
            "options": lambda: audio_options.measure(clips, 3 if quick else 5),
            "formats": lambda: formats.measure(
                clips, {c: 2 if quick else (3 if c.seconds > 60 else 5) for c in clips}
            ),
            "overhead": lambda: overhead.measure(st),
            "isolation": lambda: isolation.measure(st, 1 if quick else reps),
            "scaleout": lambda: scaleout.measure(st, 1 if quick else reps),
            "streaming": lambda: streaming.measure(st, 1 if quick else reps),
            "api": lambda: api_load.measure(st, reps, 4.0 if quick else 10.0),
            "tus": lambda: tus.measure(st, 1 if quick else reps),
            "load": lambda: sustained.measure_load(
                st, quick, args.clients, args.profile, args.load_jobs
            ),
            "chaos": lambda: sustained.measure_chaos(st, quick, args.clients),
            "s3": lambda: s3store.measure(st, Path(tmp), 1 if quick else reps),
        }
        for name in MEASUREMENTS:
            if name not in args.only:
                continue
            print(f"--- {name} ...", flush=True)
            began = time.monotonic()
            try:
                section = steps[name]()
            except Exception as exc:  # one broken measurement must not hide the others
                traceback.print_exc()
                section = Section(
                    name, [Row(name, f"error: {type(exc).__name__}: {exc}"[:300], "-", None)]
                )
            sections.append(section)
            print(report.table(section.rows), f"\n({time.monotonic() - began:.0f} s)", flush=True)
    command = f"python -m bench {' '.join(argv)}" if argv else "make bench"
    extra.append(other_work.line())
    text = report.render(sections, command, quick, started_at, time.monotonic() - started, extra)
    path = report.write(text, args.output)
    print("\n" + report.table([row for s in sections for row in s.rows]))
    print(f"\nwritten to {path}")
    failed = [row for s in sections for row in s.rows if row.passed is None]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
