"""Worker entrypoints: one module per queue, each runnable as `python -m workers.<queue>`."""
from __future__ import annotations

import sys

from celery import Celery


def build_app() -> Celery:
    """The worker's Celery app; a bad setting stops the process with one line naming it."""
    from core.settings import ConfigError
    from tasks import create_worker_app

    try:
        return create_worker_app()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")


def start_up(app: Celery) -> None:
    """Before consuming: the schema and admin exist (idempotent, under a lock), waiting up to
    a minute for MySQL, as the API's start-up does."""
    from core.bootstrap import prepare
    from core.domain import Unavailable
    from tasks import container

    try:
        prepare(container().settings, wait_seconds=60)
    except Unavailable as exc:
        sys.exit(f"start-up failed: {exc.message}")


def run_worker(app: Celery, queue: str, concurrency: int, argv: list[str] | None = None) -> None:
    """Start a worker that consumes only `queue`, named `<queue>@<host>`."""
    start_up(app)
    args = ["worker", "-Q", queue, "-n", f"{queue}@%h", "-c", str(concurrency),
            "--loglevel", "INFO", "-E"]
    app.worker_main(args + list(sys.argv[1:] if argv is None else argv))
