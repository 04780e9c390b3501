"""The Celery app built from celeryconfig and the settings, and the task queue adapter on it."""
from __future__ import annotations

from typing import Any

from celery import Celery, signals

import celeryconfig
from core.observability import bind, current_request_id
from core.ports import TaskQueue
from core.settings import Settings

REQUEST_ID_HEADER = "request_id"  # a Celery message header; the task sees request.request_id


def create_celery_app(settings: Settings) -> Celery:
    """The one place a Celery app is made: celeryconfig, then the validated settings on top."""
    app = Celery("vid2mp3")
    app.config_from_object(celeryconfig)
    options = dict(celeryconfig.broker_transport_options)
    options["visibility_timeout"] = settings.convert_time_limit + 600
    if settings.celery_key_prefix:
        options["global_keyprefix"] = settings.celery_key_prefix
    else:
        options.pop("global_keyprefix", None)
    app.conf.update(broker_url=settings.celery_broker_url, broker_transport_options=options,
                    task_soft_time_limit=settings.convert_soft_time_limit,
                    task_time_limit=settings.convert_time_limit)
    connect_request_ids()
    return app


def connect_request_ids() -> None:
    """Carry the current request id in every task message, and bind it while a task runs."""
    signals.before_task_publish.connect(_stamp_request_id, weak=False,
                                        dispatch_uid="vid2mp3.request_id.publish")
    signals.task_prerun.connect(_bind_task_context, weak=False,
                                dispatch_uid="vid2mp3.request_id.prerun")


def _stamp_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and not headers.get(REQUEST_ID_HEADER):
        headers[REQUEST_ID_HEADER] = request_id


def _bind_task_context(task: Any = None, args: Any = None, **_: Any) -> None:
    # Left bound after the task returns, so Celery's own "succeeded" line carries it too;
    # the next task in this process binds its own.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) if task is not None else None
    job_id = args[0] if args and isinstance(args[0], str) else None
    bind(request_id=request_id if isinstance(request_id, str) else None, job_id=job_id,
         task=getattr(task, "name", None))


class CeleryTaskQueue(TaskQueue):
    """Sends tasks by their stable names; the producer needs none of the task code."""

    def __init__(self, app: Celery):
        self.app = app

    def enqueue_convert(self, job_id: str) -> None:
        self.app.send_task(celeryconfig.CONVERT_TASK, args=[job_id],
                           queue=celeryconfig.CONVERT_QUEUE)

    def enqueue_notify(self, job_id: str) -> None:
        self.app.send_task(celeryconfig.NOTIFY_TASK, args=[job_id],
                           queue=celeryconfig.NOTIFY_QUEUE)
