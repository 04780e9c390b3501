"""The Celery app built from celeryconfig and the settings, and the task queue adapter on it."""
from __future__ import annotations

from celery import Celery

import celeryconfig
from core.ports import TaskQueue
from core.settings import Settings


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
    return app


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
