"""Celery configuration, derived from the validated settings: the only source of truth.

Queues are declared explicitly and tasks are routed by name; an unknown queue is an error.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from kombu.entity import Exchange, Queue

if TYPE_CHECKING:
    from core.settings import Settings

CONVERT_QUEUE = "convert"
NOTIFY_QUEUE = "notify"
WEBHOOKS_QUEUE = "webhooks"
FETCH_QUEUE = "fetch"
QUEUES = (CONVERT_QUEUE, NOTIFY_QUEUE, WEBHOOKS_QUEUE, FETCH_QUEUE)
CONVERT_TASK = "convert.video_to_mp3"
FETCH_TASK = "fetch.import_url"
NOTIFY_TASK = "notify.job_done"
ACCOUNT_EMAIL_TASK = "notify.account_email"
SWEEP_TASK = "sweep.stale_jobs"
PURGE_UPLOADS_TASK = "uploads.purge_expired"
WEBHOOK_EMIT_TASK = "webhooks.emit"
WEBHOOK_DELIVER_TASK = "webhooks.deliver"

_exchange = Exchange("vid2mp3", type="direct")


def tcp_deadlines(timeout: float, keepalive_seconds: int) -> dict[int, int]:
    """TCP options (Linux) for a connection to a peer that may go silent. TCP_USER_TIMEOUT:
    the kernel drops the connection once data it sent stays unacknowledged for `timeout` s,
    whatever the program is blocked in (the worker's event loop waits on its BRPOP socket with
    no timeout of its own). Keepalive probes after `keepalive_seconds` idle find a dead peer on
    a connection that sends nothing."""
    options: dict[int, int] = {}
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        options[socket.TCP_USER_TIMEOUT] = int(timeout * 1000)
    if keepalive_seconds and hasattr(socket, "TCP_KEEPIDLE"):
        options[socket.TCP_KEEPIDLE] = keepalive_seconds
        options[socket.TCP_KEEPINTVL] = max(1, keepalive_seconds // 3)
        options[socket.TCP_KEEPCNT] = 3
    return options


def celery_config(settings: "Settings") -> dict[str, Any]:
    """Every Celery setting, from the settings every process already validated."""
    # A fetch may take IMPORT_TIMEOUT_SECONDS; its own limits sit just above that deadline.
    fetch_soft_limit = int(settings.import_timeout) + 60
    fetch_hard_limit = fetch_soft_limit + 60
    transport: dict[str, Any] = {
        # An unacknowledged task comes back only after this long: keep it above the hard
        # limits, or a long conversion (or fetch) would be handed to a second worker while it
        # still runs.
        "visibility_timeout": max(settings.convert_time_limit, fetch_hard_limit) + 600,
        # A broker that drops packets silently: without these a worker waits on its BRPOP
        # until TCP gives up (minutes), and once the network heals it notices only at the
        # next retransmission (tens of seconds). With them it reconnects within the timeout.
        "socket_timeout": settings.broker_timeout,
        "socket_connect_timeout": settings.broker_timeout,
        "socket_keepalive": True,
        "socket_keepalive_options": tcp_deadlines(
            settings.broker_timeout, settings.broker_heartbeat_seconds
        ),
    }
    if settings.broker_heartbeat_seconds:
        transport["health_check_interval"] = settings.broker_heartbeat_seconds
    if settings.celery_key_prefix:
        transport["global_keyprefix"] = settings.celery_key_prefix
    return {
        "broker_url": settings.celery_broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": settings.broker_timeout,  # AMQP's connect
        "broker_heartbeat": settings.broker_heartbeat_seconds,  # AMQP only; Redis: above
        # A worker that lost its broker keeps reconnecting (Celery gives up after 100 tries
        # by default, and the worker exits): a partition may outlast that.
        "broker_connection_max_retries": None,
        "broker_transport_options": transport,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_queues": tuple(Queue(name, _exchange, routing_key=name) for name in QUEUES),
        "task_create_missing_queues": False,
        "task_default_queue": NOTIFY_QUEUE,
        "task_default_exchange": "vid2mp3",
        "task_routes": {
            "convert.*": {"queue": CONVERT_QUEUE, "routing_key": CONVERT_QUEUE},
            "notify.*": {"queue": NOTIFY_QUEUE, "routing_key": NOTIFY_QUEUE},
            "sweep.*": {"queue": NOTIFY_QUEUE, "routing_key": NOTIFY_QUEUE},
            "uploads.*": {"queue": NOTIFY_QUEUE, "routing_key": NOTIFY_QUEUE},
            "webhooks.*": {"queue": WEBHOOKS_QUEUE, "routing_key": WEBHOOKS_QUEUE},
            "fetch.*": {"queue": FETCH_QUEUE, "routing_key": FETCH_QUEUE},
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_max_tasks_per_child": settings.worker_max_tasks_per_child,
        "task_soft_time_limit": settings.convert_soft_time_limit,
        "task_time_limit": settings.convert_time_limit,
        "task_annotations": {
            FETCH_TASK: {"soft_time_limit": fetch_soft_limit, "time_limit": fetch_hard_limit}
        },
        # Task events (received, started, succeeded, ...) only while a monitor asks for them:
        # Flower turns them on in every worker it sees (its enable_events, every 5 s) and
        # they go off again after. Sent to nobody they cost each job about 9 ms of CPU in
        # the workers and Redis (bench/results/latest-load.md).
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": {
            "requeue-stale-jobs": {
                "task": SWEEP_TASK,
                "schedule": float(settings.sweep_interval_seconds),
            },
            "purge-expired-uploads": {"task": PURGE_UPLOADS_TASK, "schedule": 600.0},
        },
    }
