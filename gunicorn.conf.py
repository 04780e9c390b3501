"""gunicorn settings for the API (production and `make up`), from the environment."""

import os

bind = f"{os.environ.get('API_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("API_THREADS", "4"))
timeout = int(os.environ.get("API_TIMEOUT", "300"))  # large uploads and downloads take time
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# The default access line plus the request id the API answered with.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" request_id=%({x-request-id}o)s'
)
if os.environ.get("LOG_FORMAT", "text") == "json":
    logger_class = "api.gunicorn_logging.JsonLogger"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn >= 25 opens a control socket under $HOME by default; containers run read-only.
control_socket_disable = True


def on_starting(server):
    """Check the settings and create the database and admin account before any worker starts."""
    import sys

    from core.bootstrap import prepare
    from core.domain import Unavailable
    from core.settings import ConfigError, Settings

    try:
        settings = Settings.from_env()
        prepare(settings, wait_seconds=10)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    except Unavailable:
        server.log.warning(
            "MySQL is not reachable at start; the schema and the admin account "
            "are created on first use, and /readyz reports 503 until then"
        )
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
