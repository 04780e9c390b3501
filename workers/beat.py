"""The scheduler that runs the stale-job sweeper: `python -m workers.beat`."""

import os
import sys

from tasks import container
from workers import build_app

app = build_app()

if __name__ == "__main__":
    schedule = os.path.join(container().settings.data_dir, "celerybeat-schedule")
    os.makedirs(os.path.dirname(schedule), exist_ok=True)
    app.start(["beat", "--loglevel", "INFO", "--schedule", schedule, *sys.argv[1:]])
