"""The fetch worker, for imports by URL: `python -m workers.fetch`
(same as `celery -A workers.fetch worker -Q fetch -n fetch@%h`)."""

from celeryconfig import FETCH_QUEUE
from tasks import container
from workers import build_app, run_worker

app = build_app()

if __name__ == "__main__":
    run_worker(app, FETCH_QUEUE, container().settings.fetch_concurrency)
