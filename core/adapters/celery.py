"""The Celery app built from the settings, and the task queue adapter on it."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, cast

import redis
from celery import Celery, signals

import celeryconfig
from core.observability import bind, current_request_id
from core.ports.queue import TaskQueue
from core.settings import Settings

log = logging.getLogger(__name__)
PENDING_SCAN_LIMIT = 50_000
REQUEST_ID_HEADER = "request_id"  # a Celery message header; the task sees request.request_id


def create_celery_app(settings: Settings) -> Celery:
    """The one place a Celery app is made, configured from the validated settings."""
    app = Celery("vid2mp3")
    app.conf.update(celeryconfig.celery_config(settings))
    connect_request_ids()
    return app


def connect_request_ids() -> None:
    """Carry the current request id in every task message, and bind it while a task runs."""
    signals.before_task_publish.connect(
        _stamp_request_id, weak=False, dispatch_uid="vid2mp3.request_id.publish"
    )
    signals.task_prerun.connect(
        _bind_task_context, weak=False, dispatch_uid="vid2mp3.request_id.prerun"
    )


def _stamp_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and not headers.get(REQUEST_ID_HEADER):
        headers[REQUEST_ID_HEADER] = request_id


def _bind_task_context(task: Any = None, args: Any = None, **_: Any) -> None:
    # Left bound after the task returns, so Celery's own "succeeded" line carries it too;
    # the next task in this process binds its own.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None) if task is not None else None
    job_id = args[0] if args and isinstance(args[0], str) else None
    bind(
        request_id=request_id if isinstance(request_id, str) else None,
        job_id=job_id,
        task=getattr(task, "name", None),
    )


class CeleryTaskQueue(TaskQueue):
    """Sends tasks by their stable names; the producer needs none of the task code."""

    def __init__(self, app: Celery, settings: Settings):
        self.app = app
        self.settings = settings

    def enqueue_convert(self, job_id: str) -> None:
        self.app.send_task(
            celeryconfig.CONVERT_TASK, args=[job_id], queue=celeryconfig.CONVERT_QUEUE
        )

    def enqueue_fetch(self, job_id: str) -> None:
        self.app.send_task(celeryconfig.FETCH_TASK, args=[job_id], queue=celeryconfig.FETCH_QUEUE)

    def enqueue_notify(self, job_id: str, holder: str | None = None) -> None:
        self.app.send_task(
            celeryconfig.NOTIFY_TASK,
            args=[job_id] if holder is None else [job_id, holder],
            queue=celeryconfig.NOTIFY_QUEUE,
        )

    def enqueue_account_email(self, user_id: int, kind: str, address: str | None = None) -> None:
        self.app.send_task(
            celeryconfig.ACCOUNT_EMAIL_TASK,
            args=[int(user_id), kind, address],
            queue=celeryconfig.NOTIFY_QUEUE,
        )

    def enqueue_event(self, job_id: str, event: str) -> None:
        self.app.send_task(
            celeryconfig.WEBHOOK_EMIT_TASK, args=[job_id, event], queue=celeryconfig.WEBHOOKS_QUEUE
        )

    def enqueue_delivery(self, delivery_id: str, holder: str | None = None) -> None:
        self.app.send_task(
            celeryconfig.WEBHOOK_DELIVER_TASK,
            args=[delivery_id] if holder is None else [delivery_id, holder],
            queue=celeryconfig.WEBHOOKS_QUEUE,
        )

    def pending_convert_ids(self) -> set[str] | None:
        """Job ids in the Redis list that holds the convert queue's waiting messages."""
        url = self.settings.celery_broker_url
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return None
        key = self.settings.celery_key_prefix + celeryconfig.CONVERT_QUEUE
        try:
            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            try:
                if cast(int, client.llen(key)) > PENDING_SCAN_LIMIT:
                    return None
                messages = cast(list[bytes], client.lrange(key, 0, -1))
            finally:
                client.close()
        except redis.RedisError:
            log.warning("could not read the convert queue", exc_info=True)
            return None
        return {job_id for job_id in map(_job_id_of, messages) if job_id}


def _job_id_of(message: bytes) -> str | None:
    """The first argument of a Celery protocol-2 message as kombu stores it in Redis."""
    try:
        envelope = json.loads(message)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None
