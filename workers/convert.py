"""The convert worker: `python -m workers.convert`
(same as `celery -A workers.convert worker -Q convert -n convert@%h`)."""
from celeryconfig import CONVERT_QUEUE
from tasks import container, create_worker_app
from workers import run_worker

app = create_worker_app()

if __name__ == "__main__":
    run_worker(app, CONVERT_QUEUE, container().settings.convert_concurrency)
