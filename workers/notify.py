"""The notify worker: `python -m workers.notify`
(same as `celery -A workers.notify worker -Q notify -n notify@%h`)."""

from celeryconfig import NOTIFY_QUEUE
from tasks import container
from workers import build_app, run_worker

app = build_app()

if __name__ == "__main__":
    run_worker(app, NOTIFY_QUEUE, container().settings.notify_concurrency)
