"""Worker entrypoints: one module per queue, each runnable as `python -m workers.<queue>`."""
from __future__ import annotations

import sys

from celery import Celery


def run_worker(app: Celery, queue: str, concurrency: int, argv: list[str] | None = None) -> None:
    """Start a worker that consumes only `queue`, named `<queue>@<host>`."""
    args = ["worker", "-Q", queue, "-n", f"{queue}@%h", "-c", str(concurrency),
            "--loglevel", "INFO", "-E"]
    app.worker_main(args + list(sys.argv[1:] if argv is None else argv))
