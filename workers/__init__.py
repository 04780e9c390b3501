"""Worker entrypoints: one module per queue, each runnable as `python -m workers.<queue>`."""

from __future__ import annotations

import sys
from typing import Any

from celery import Celery, signals


def build_app() -> Celery:
    """The worker's Celery app; a bad setting stops the process with one line naming it."""
    from core.settings import ConfigError
    from tasks import create_worker_app

    try:
        app = create_worker_app()
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    # Our handler and format (LOG_FORMAT) instead of Celery's, in workers and beat alike,
    # from the first line on.
    _setup_logging()
    signals.setup_logging.connect(_setup_logging, weak=False, dispatch_uid="vid2mp3.logging")
    return app


def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    from core.observability import configure_logging
    from tasks import container

    configure_logging(container().settings)


def start_up(app: Celery) -> None:
    """Before consuming: the schema is the one this build needs (waiting up to a minute for
    MySQL), or the worker stops with one line. Workers never migrate: `python -m
    core.migrate` does, once per deploy."""
    from core.bootstrap import schema_behind
    from core.domain import Unavailable
    from tasks import container

    try:
        behind = schema_behind(container().settings, wait_seconds=60)
    except Unavailable as exc:
        sys.exit(f"start-up failed: {exc.message}")
    if behind:
        sys.exit(behind)


def run_worker(app: Celery, queue: str, concurrency: int, argv: list[str] | None = None) -> None:
    """Start a worker that consumes only `queue`, named `<queue>@<host>`."""
    from tasks import container

    start_up(app)
    args = [
        "worker",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "-c",
        str(concurrency),
        "--loglevel",
        "INFO",
        "-E",
    ]
    if container().settings.log_format == "json":
        args.insert(0, "--quiet")  # no start-up banner: every line of the log is JSON
    serve_metrics(queue, concurrency)
    app.worker_main(args + list(sys.argv[1:] if argv is None else argv))


def serve_metrics(queue: str, concurrency: int) -> None:
    """With WORKER_METRICS_PORT set: the pool's metric files go to a directory of this worker,
    and its main process serves them, summed over the pool processes, once it is ready."""
    from core.observability import use_metrics_dir
    from tasks import container

    settings = container().settings
    if not settings.worker_metrics_port:
        return
    use_metrics_dir(settings, f"worker-{queue}-{settings.worker_metrics_port}")

    def start(sender: Any = None, **_: Any) -> None:
        from core.adapters.prometheus_metrics import WorkerCollector, registry, serve

        node = getattr(sender, "hostname", None) or queue
        pool = getattr(getattr(sender, "controller", None), "concurrency", None) or concurrency
        serve(
            settings.worker_metrics_port,
            settings.worker_metrics_host,
            registry(WorkerCollector(queue, node, pool)),
        )

    signals.worker_ready.connect(start, weak=False, dispatch_uid="vid2mp3.worker_metrics")
