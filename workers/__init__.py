"""Worker entrypoints: one module per queue, each runnable as `python -m workers.<queue>`."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery, signals

log = logging.getLogger(__name__)
_stopped_with: int | None = None  # the exit status when this module stopped the worker


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
    from core.domain.errors import Unavailable
    from tasks import container

    try:
        behind = schema_behind(container().settings, wait_seconds=60)
    except Unavailable as exc:
        sys.exit(f"start-up failed: {exc.message}")
    if behind:
        sys.exit(behind)


def run_worker(app: Celery, queue: str, concurrency: int, argv: list[str] | None = None) -> None:
    """Start a worker that consumes only `queue`, named `<queue>@<host>`."""
    from core.malloc import keep_large_buffers
    from tasks import container

    check_metrics_port()
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
    ]
    if container().settings.log_format == "json":
        args.insert(0, "--quiet")  # no start-up banner: every line of the log is JSON
    serve_metrics(queue, concurrency)
    keep_large_buffers()  # core/malloc.py; the pool processes forked next inherit it
    app.worker_main(args + list(sys.argv[1:] if argv is None else argv))
    # Celery's worker_main drops the worker's exit code; keep ours when we stopped it.
    if _stopped_with is not None:
        sys.exit(_stopped_with)


def check_metrics_port() -> None:
    """With WORKER_METRICS_PORT set: stop with one line, before consuming anything, when another
    process listens there; a worker serving nothing is better than one whose URL shows someone
    else's numbers. Supervisors (compose, Kubernetes, `make up`) restart it, saying so again."""
    from core.observability import check_metrics_port as check
    from core.settings import ConfigError
    from tasks import container

    settings = container().settings
    if not settings.worker_metrics_port:
        return
    try:
        check(settings.worker_metrics_port, settings.worker_metrics_host)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")


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
        from core.settings import ConfigError

        node = getattr(sender, "hostname", None) or queue
        pool = getattr(getattr(sender, "controller", None), "concurrency", None) or concurrency
        try:
            container().serve_worker_metrics(queue, node, pool)
        except ConfigError as exc:  # taken since check_metrics_port(): stop all the same
            global _stopped_with
            log.error("configuration error: %s", exc)  # one line, no traceback
            _stopped_with = 1
            raise SystemExit(1) from None  # Celery shuts the worker down warm

    signals.worker_ready.connect(start, weak=False, dispatch_uid="vid2mp3.worker_metrics")
