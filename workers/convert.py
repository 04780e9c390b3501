"""The convert worker: `python -m workers.convert`
(same as `celery -A workers.convert worker -Q convert -n convert@%h`)."""

import sys

from celeryconfig import CONVERT_QUEUE
from tasks import container
from workers import build_app, run_worker

app = build_app()

if __name__ == "__main__":
    refusal = container().ffmpeg_refusal()
    if refusal:
        sys.exit(f"configuration error: {refusal}")
    run_worker(app, CONVERT_QUEUE, container().settings.convert_concurrency)
