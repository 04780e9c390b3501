"""Celery configuration: a plain module read from the environment when a Celery app loads it.

Queues are declared explicitly and tasks are routed by name; an unknown queue is an error.
"""
import os

from kombu import Exchange, Queue

CONVERT_QUEUE = "convert"
NOTIFY_QUEUE = "notify"
CONVERT_TASK = "convert.video_to_mp3"
NOTIFY_TASK = "notify.job_done"
SWEEP_TASK = "sweep.stale_jobs"
PURGE_UPLOADS_TASK = "uploads.purge_expired"

_soft_limit = int(os.environ.get("CONVERT_SOFT_TIME_LIMIT", "1800"))
_hard_limit = int(os.environ.get("CONVERT_TIME_LIMIT", "1900"))
_key_prefix = os.environ.get("CELERY_KEY_PREFIX", "")

broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
broker_connection_retry_on_startup = True
broker_transport_options = {
    # An unacknowledged task comes back only after this long: keep it above the hard limit,
    # or a long conversion would be handed to a second worker while the first still runs.
    "visibility_timeout": _hard_limit + 600,
    **({"global_keyprefix": _key_prefix} if _key_prefix else {}),
}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_backend = None

_exchange = Exchange("vid2mp3", type="direct")
task_queues = (
    Queue(CONVERT_QUEUE, _exchange, routing_key=CONVERT_QUEUE),
    Queue(NOTIFY_QUEUE, _exchange, routing_key=NOTIFY_QUEUE),
)
task_create_missing_queues = False
task_default_queue = NOTIFY_QUEUE
task_default_exchange = "vid2mp3"
task_routes = {
    "convert.*": {"queue": CONVERT_QUEUE, "routing_key": CONVERT_QUEUE},
    "notify.*": {"queue": NOTIFY_QUEUE, "routing_key": NOTIFY_QUEUE},
    "sweep.*": {"queue": NOTIFY_QUEUE, "routing_key": NOTIFY_QUEUE},
}

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_max_tasks_per_child = int(os.environ.get("WORKER_MAX_TASKS_PER_CHILD", "100"))
task_soft_time_limit = _soft_limit
task_time_limit = _hard_limit

worker_send_task_events = True
task_send_sent_event = True
worker_hijack_root_logger = False
timezone = "UTC"
enable_utc = True

beat_schedule = {
    "requeue-stale-jobs": {"task": SWEEP_TASK,
                           "schedule": float(os.environ.get("SWEEP_INTERVAL_SECONDS", "60"))},
    "purge-expired-uploads": {"task": PURGE_UPLOADS_TASK, "schedule": 600.0},
}
