"""gunicorn settings for the API (production and `make up`), from the validated Settings (the
environment over .env): a bad value stops gunicorn with one line naming the variable."""

import sys

from core.malloc import keep_large_buffers
from core.settings import ConfigError, Settings

try:
    settings = Settings.from_env()
except ConfigError as exc:
    sys.exit(f"configuration error: {exc}")

# Upload and download buffers reuse memory instead of faulting in new pages (core/malloc.py);
# set in the master, inherited by every worker it forks.
keep_large_buffers()

bind = f"{settings.api_host}:{settings.api_port}"
workers = settings.web_concurrency
worker_class = "gthread"
# Each open event stream holds a thread while it waits (blocked, no CPU) for its job's next
# event: EVENTS_MAX_STREAMS of them come on top of the API_THREADS that serve everything else,
# so streams never take a thread an upload or a poll needs. The pool grows only as used.
threads = settings.api_threads + settings.events_max_streams
timeout = settings.api_timeout  # large uploads and downloads take time
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# The default access line plus the request id the API answered with.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)
# Tokens in paths (/links/<token>, /guest/<token>) and API keys never reach the access log.
logger_class = "api.gunicorn_logging.RedactingLogger"
if settings.log_format == "json":
    logger_class = "api.gunicorn_logging.JsonLogger"
loglevel = settings.log_level.lower()
forwarded_allow_ips = settings.forwarded_allow_ips
# gunicorn >= 25 opens a control socket under $HOME by default; containers run read-only.
control_socket_disable = True


def on_starting(server):
    """Before any worker starts: the schema is the one this build needs (`python -m
    core.migrate` made it; the API never migrates), or the API stops with one line."""
    from core.bootstrap import schema_behind
    from core.domain.errors import Unavailable

    try:
        behind = schema_behind(settings, wait_seconds=10)
    except Unavailable:
        server.log.warning(
            "MySQL is not reachable at start; /readyz reports 503 until it answers "
            "with the schema this build needs"
        )
    else:
        if behind:
            sys.exit(behind)
    from core.observability import use_metrics_dir

    # Before the workers fork: each writes its metric files here; /metrics adds them up.
    use_metrics_dir(settings, f"api-{settings.api_port}")


def child_exit(server, worker):
    """A worker is gone: drop its live gauges (its counters stay in the totals)."""
    from core.observability import metrics_dir_in_use

    path = metrics_dir_in_use()
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)


def post_worker_init(worker):
    """On a stop signal, end the worker's open event streams and long polls at once (their
    clients reconnect to another worker), instead of holding the graceful stop for
    graceful_timeout; then gunicorn's own handler runs as before."""
    import signal

    container = getattr(worker.wsgi, "extensions", {}).get("vid2mp3")
    if container is None:  # another app than api.wsgi:app
        return
    streams = container.job_streams

    def stopping(handler):
        def handle(signum, frame):
            streams.shutdown()
            handler(signum, frame)

        return handle

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        previous = signal.getsignal(signum)
        if callable(previous):
            signal.signal(signum, stopping(previous))
