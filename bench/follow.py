"""What following one CLI conversion costs the API: `vid2mp3 convert --poll` (GET /jobs/<id>
with If-None-Match) against `vid2mp3 convert` (the job's event stream), side by side on one
real stack (gunicorn, a convert worker; directory store). Per job: the requests the API logged
(all of them, and the job reads alone), the API processes' CPU time, and the lag between the
job's `finished_at` and the CLI starting the download. `.venv/bin/python bench/follow.py
[--runs N] [--seconds S]`; writes bench/results/latest-follow.md."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, os.getcwd())

import psutil  # noqa: E402

from tests.support import media  # noqa: E402
from tests.support.client import login  # noqa: E402
from tests.support.stack import running_stack  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "latest-follow.md"
ROOT = Path(__file__).resolve().parent.parent


def api_cpu(stack) -> float:
    master = psutil.Process(stack.processes["api"].pid)
    total = 0.0
    for proc in [master, *master.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def access_lines(stack) -> list[str]:
    return [line for line in stack.log("api").splitlines() if '"GET /' in line or '"POST /' in line]


def convert(stack, clip: str, out: Path, poll: bool, email: str) -> None:
    env = {
        **os.environ,
        "VID2MP3_URL": stack.base_url,
        "VID2MP3_EMAIL": email,
        "VID2MP3_PASSWORD": "password-1",
        "XDG_CONFIG_HOME": str(out.parent / "config"),  # one login, in the warm-up
    }
    argv = [str(ROOT / ".venv/bin/vid2mp3"), "convert", clip, "-o", str(out), "--force"]
    subprocess.run([*argv, *(["--poll"] if poll else [])], env=env, check=True, capture_output=True)


def measure(runs: int, seconds: float) -> dict[str, dict[str, list[float]]]:
    tmp = Path(tempfile.mkdtemp(prefix="vid2mp3-follow-"))
    clip = media.make_audio_only(tmp, seconds=seconds, fmt="m4a")
    figures: dict[str, dict[str, list[float]]] = {
        mode: {"requests": [], "job_reads": [], "cpu_ms": [], "seconds": []}
        for mode in ("poll", "events")
    }
    with running_stack(tmp / "stack") as stack:
        s = stack.settings
        admin = login(stack, s.admin_email, s.admin_password)
        admin.post(
            "/users",
            json={"name": "bench", "email": "bench@example.com", "password": "password-1"},
        )
        warm = tmp / "warm"
        warm.mkdir()
        convert(stack, clip, warm, False, "bench@example.com")  # login, imports, pools
        convert(stack, clip, warm, True, "bench@example.com")
        for _ in range(runs):
            for mode in ("poll", "events"):
                out = tmp / mode
                out.mkdir(exist_ok=True)
                lines, cpu, began = len(access_lines(stack)), api_cpu(stack), time.monotonic()
                convert(stack, clip, out, mode == "poll", "bench@example.com")
                took = time.monotonic() - began
                time.sleep(0.5)  # the access log line of the last request is written
                new = access_lines(stack)[lines:]
                figures[mode]["requests"].append(len(new))
                figures[mode]["job_reads"].append(
                    sum(1 for line in new if re.search(r'"GET /jobs/[0-9a-f]{32} ', line))
                )
                figures[mode]["cpu_ms"].append((api_cpu(stack) - cpu) * 1000)
                figures[mode]["seconds"].append(took)
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the sound")
    args = parser.parse_args(argv)
    figures = measure(args.runs, args.seconds)

    def fmt(values: list[float], digits: int = 0) -> str:
        return (
            f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})"
        )

    rows = [
        f"| {mode} | {fmt(f['requests'])} | {fmt(f['job_reads'])} | {fmt(f['cpu_ms'])} | "
        f"{fmt(f['seconds'], 2)} |"
        for mode, f in figures.items()
    ]
    text = (
        "# Following a CLI conversion: polling against events (bench/follow.py)\n\n"
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores shared with "
        f"other work; {args.runs} runs of each, alternating; one {args.seconds:g} s sound "
        "(m4a) per run, one API (2 gunicorn workers), one convert worker, directory store. "
        "Median (min-max) per job; requests as the API's access log counts them (upload, "
        "job reads or the stream, the MP3; the CLI's token is reused, no login), CPU of the "
        "API's processes only (upload and download included).\n\n"
        "| CLI | API requests | GET /jobs/<id> | API CPU ms | wall s (upload to MP3) |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Command: `.venv/bin/python bench/follow.py --runs {args.runs} --seconds "
        f"{args.seconds:g}`.\n"
    )
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
