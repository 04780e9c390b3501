"""A stack whose every backing service the tests can break: private Redis, a MySQL proxy,
a restartable SMTP server, a fast sweeper; plus a long input to interrupt."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import psutil
import pytest
import requests

from tests.support import media
from tests.support.client import Client, login
from tests.support.proxy import Outage
from tests.support.servers import RedisServer, SMTPServer
from tests.support.stack import running_stack
from tests.support.wait import wait_for


@pytest.fixture(scope="session")
def services(tmp_path_factory, settings):
    redis_dir = tmp_path_factory.mktemp("redis")
    redis = RedisServer(str(redis_dir))
    redis.start()
    mysql = Outage(settings.mysql_host, settings.mysql_port).up()
    smtp = SMTPServer()
    smtp.start()
    yield redis, mysql, smtp
    smtp.stop()
    mysql.down()
    redis.stop()


@pytest.fixture(scope="session")
def stack(services, tmp_path_factory):
    redis, mysql, smtp = services
    env = {
        "REDIS_URL": redis.url(0),
        "CELERY_BROKER_URL": redis.url(1),
        "MYSQL_PORT": str(mysql.port),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "SWEEP_INTERVAL_SECONDS": "1",
        "SWEEP_AFTER_SECONDS": "4",
        "LEASE_SECONDS": "2",
        "NOTIFY_MAX_RETRIES": "3",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
    }
    with running_stack(tmp_path_factory.mktemp("faults"), env, beat=True) as running:
        running.blob_store = "directory"
        yield running


@pytest.fixture(scope="session")
def admin(stack):
    return login(stack, stack.settings.admin_email, stack.settings.admin_password)


@pytest.fixture(scope="session")
def user(stack, admin):
    created = admin.post(
        "/users", json={"name": "faulty", "email": "faulty@example.com", "password": "password-1"}
    )
    assert created.status_code == 201, created.text
    return login(stack, "faulty@example.com", "password-1")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fault-media")


@pytest.fixture(scope="session")
def long_input(media_dir):
    """Ten minutes of sound: a few seconds of ffmpeg work, long enough to interrupt."""
    return media.make_audio_only(media_dir, seconds=600, fmt="m4a")


@pytest.fixture(scope="session")
def silent_duration_input(media_dir):
    """Half an hour of sound in a WebM written to a pipe, as a browser's MediaRecorder does:
    no declared duration, so the conversion never reports a percentage."""
    return media.make_streamed_audio_webm(media_dir, seconds=1800)


@pytest.fixture(scope="session")
def clip(media_dir):
    return media.make_video(media_dir, seconds=2.0)


def upload(client: Client, path: str, **form) -> str:
    with open(path, "rb") as fh:
        response = client.post(
            "/upload", files={"file": (os.path.basename(path), fh)}, data=form, timeout=60
        )
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def job_of(client: Client, job_id: str) -> dict:
    return client.get(f"/jobs/{job_id}").json()


def wait_status(client: Client, job_id: str, statuses=("done", "failed"), timeout=90) -> dict:
    def reached():
        job = job_of(client, job_id)
        return job if job["status"] in statuses else None

    return wait_for(
        reached, timeout=timeout, interval=0.1, what=f"job {job_id} to reach {statuses}"
    )


def converting_ffmpeg(job_id: str) -> psutil.Process:
    """The ffmpeg process working on this job, once it has made some progress."""

    def find():
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if (
                "ffmpeg" in (proc.info["name"] or "")
                and f"job-{job_id}-" in cmdline
                and "libmp3lame" in cmdline
            ):
                return proc
        return None

    return wait_for(find, timeout=60, interval=0.02, what=f"ffmpeg converting {job_id}")


def mp3_files_of(stack, job_id: str) -> list[str]:
    """MP3s in the directory store whose metadata names this job."""
    import json

    folder = os.path.join(stack.env["DATA_DIR"], "blobs", "mp3s")
    found = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as fh:
                if json.load(fh).get("metadata", {}).get("job_id") == job_id:
                    found.append(name)
    return found


def no_ffmpeg_left(job_id: str) -> bool:
    return not any(
        f"job-{job_id}-" in " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["cmdline"])
    )


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
