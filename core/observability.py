"""Request ids, structured logs, the place metric files live and whether a metrics port is free;
no Flask, Celery or Prometheus.

The id of the HTTP request (or of the task) being handled sits in a contextvar: the API sets
it per request, a Celery signal sets it per task from the message headers, and a logging
filter copies it into every log record.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import socket
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from core.settings import ConfigError, Settings

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
task_var: ContextVar[str | None] = ContextVar("task", default=None)

CONTEXT_FIELDS = ("request_id", "job_id", "task")


def accept_request_id(offered: str | None) -> str:
    """The client's id when it is sane (1-128 of A-Z a-z 0-9 . _ -), else a new one."""
    if offered and _SANE_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


def bind(request_id: str | None = None, job_id: str | None = None, task: str | None = None) -> None:
    """Set the context every later log line of this thread (or task) carries."""
    request_id_var.set(request_id)
    job_id_var.set(job_id)
    task_var.set(task)


class ContextFilter(logging.Filter):
    """Adds request_id, job_id and task (None when unset) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (
            ("request_id", request_id_var),
            ("job_id", job_id_var),
            ("task", task_var),
        ):
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, request_id, job_id, task."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            entry[name] = getattr(record, name, None)
        entry["process"] = record.process
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The human format, with the context appended when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None)
        )
        if not context:
            return line
        head, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{head} [{context}]{newline}{rest}"


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(settings: Settings) -> None:
    """Root logger: one stderr handler in LOG_FORMAT with the context filter, at LOG_LEVEL."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_vid2mp3", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._vid2mp3 = True  # type: ignore[attr-defined]
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    handler.setFormatter(formatter(settings.log_format))
    root.setLevel(settings.log_level.upper())
    logging.captureWarnings(True)  # warnings become log records, in the same format


# --- metric files ----------------------------------------------------------------------------

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_metrics_dir: str | None = None


def use_metrics_dir(settings: Settings, name: str) -> str:
    """Empty DATA_DIR/metrics/<name> (or METRICS_DIR/<name>) and point prometheus_client's
    multiprocess mode at it; call in the parent before it forks and before any metric exists."""
    path = os.path.join(settings.metrics_dir or os.path.join(settings.data_dir, "metrics"), name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    # Written, never read from a deployment: prometheus_client reads it when it is imported.
    os.environ.update({MULTIPROC_ENV: path})
    global _metrics_dir
    _metrics_dir = path
    return path


def metrics_dir_in_use() -> str | None:
    """The directory set by use_metrics_dir in this process or the parent it forked from."""
    return _metrics_dir


def metrics_port_taken(port: int, host: str) -> ConfigError:
    """The one line a worker stops with when another process listens on its metrics port."""
    return ConfigError(
        f"WORKER_METRICS_PORT={port}: {host}:{port} is in use by another process; set "
        "WORKER_METRICS_PORT to a free port, or 0 to serve no worker metrics"
    )


def check_metrics_port(port: int, host: str) -> None:
    """ConfigError when a metrics server could not listen on host:port now. The probe binds
    with SO_REUSEADDR, as the server does, so it fails only where something listens already.
    Call it before use_metrics_dir, which empties the directory named after the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise metrics_port_taken(port, host) from None
