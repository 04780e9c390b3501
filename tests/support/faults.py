"""What the fault tests look at beside the API: the MP3s on disk, whether the API answers,
and a supervisor that restarts crashed workers as compose and Kubernetes would."""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager

import requests


def mp3_files_of(stack, job_id: str) -> list[str]:
    """MP3s in the directory store whose metadata names this job."""
    folder = os.path.join(stack.env["DATA_DIR"], "blobs", "mp3s")
    found = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as fh:
                if json.load(fh).get("metadata", {}).get("job_id") == job_id:
                    found.append(name)
    return found


def api_up(stack) -> bool:
    try:
        return requests.get(stack.url("/healthz"), timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def supervised(stack, names=("worker-convert", "worker-notify", "worker-webhooks", "beat")):
    """Restart any of these processes that exits meanwhile, as compose (`restart:`), Kubernetes
    and `make up` do. kombu 5.7's Redis transport can crash a worker whose broker connection
    drops mid-task ("'NoneType' object has no attribute 'hostname'" while it restores unacked
    messages); the service's guarantee is that a restarted worker loses nothing."""
    stop = threading.Event()
    restarted: list[str] = []

    def watch() -> None:
        while not stop.wait(0.2):
            for name, _code in stack.exited().items():
                if name in names:
                    stack.stop(name)  # reap it and whatever it left behind
                    stack.start(name)
                    restarted.append(name)

    thread = threading.Thread(target=watch, name="supervisor", daemon=True)
    thread.start()
    try:
        yield restarted
    finally:
        stop.set()
        thread.join(5)
