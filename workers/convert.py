"""The convert worker: `python -m workers.convert`
(same as `celery -A workers.convert worker -Q convert -n convert@%h`)."""
from celeryconfig import CONVERT_QUEUE
from tasks import container
from workers import build_app, run_worker

app = build_app()

if __name__ == "__main__":
    run_worker(app, CONVERT_QUEUE, container().settings.convert_concurrency)
