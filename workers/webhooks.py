"""The webhooks worker: `python -m workers.webhooks`
(same as `celery -A workers.webhooks worker -Q webhooks -n webhooks@%h`)."""

from celeryconfig import WEBHOOKS_QUEUE
from tasks import container
from workers import build_app, run_worker

app = build_app()

if __name__ == "__main__":
    run_worker(app, WEBHOOKS_QUEUE, container().settings.webhook_concurrency)
