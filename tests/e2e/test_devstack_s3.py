"""`make up STORE=s3`: SeaweedFS runs beside the stack, a conversion lands in its bucket, the
download redirects to it, and Ctrl-C stops it with everything else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import psutil
import pytest
import requests

from core.settings import Settings
from devtools.processes import ROOT, free_port
from tests.support import media
from tests.support.config import drop_database, service_env
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def _alive(sessions: set[int]) -> list[str]:
    alive = []
    for proc in psutil.process_iter(["pid", "name", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) in sessions:
                alive.append(f"{proc.info['name']} ({proc.pid})")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


def _ready(url: str, devstack: subprocess.Popen) -> bool:
    assert devstack.poll() is None, f"devstack exited with {devstack.returncode}"
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_make_up_store_s3_runs_seaweedfs_and_serves_from_it(tmp_path):
    run = uuid.uuid4().hex[:8]
    api_port = free_port()
    env = service_env(
        MYSQL_DATABASE=f"vid2mp3_up_{run}",
        REDIS_PREFIX=f"vid2mp3-up-{run}:",
        CELERY_KEY_PREFIX=f"vid2mp3-up-{run}:",
        API_PORT=api_port,
        FLOWER_PORT=free_port(),
        FLOWER_BASIC_AUTH="flower:flower-test-password",
        DATA_DIR=tmp_path / "data",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{api_port}",
        WEB_CONCURRENCY=1,
        WORKER_METRICS_PORT=0,
        MONGO_URI="",
        SMTP_URL="",
    )
    settings = Settings.from_env(env, dotenv_path=None)
    url = f"http://127.0.0.1:{api_port}"
    inherited = {k: v for k, v in os.environ.items() if k not in env and not k.startswith("AWS_")}
    log_path = tmp_path / "devstack.log"
    with open(log_path, "wb") as log:
        devstack = subprocess.Popen(
            # what `make up STORE=s3` runs (the Makefile's `up` target)
            [sys.executable, "scripts/devstack.py", "--store", "s3"]
            + ["--env-file", str(tmp_path / ".env")],
            cwd=ROOT,
            env={**inherited, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sessions = {devstack.pid}
    try:
        wait_for(lambda: _ready(url, devstack), timeout=120, what="the API to be ready")
        children = psutil.Process(devstack.pid).children()
        sessions |= {os.getsid(p.pid) for p in children}
        assert any(p.name() == "weed" for p in children), [p.cmdline() for p in children]

        token = requests.post(
            url + "/login", auth=(settings.admin_email, settings.admin_password), timeout=10
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        clip = media.make_video(tmp_path, seconds=2.0)
        with open(clip, "rb") as fh:
            accepted = requests.post(
                url + "/upload", files={"file": ("clip.mp4", fh)}, headers=auth, timeout=60
            )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        job = wait_for(
            lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
                requests.get(f"{url}/jobs/{job_id}", headers=auth, timeout=10).json()
            ),
            timeout=120,
            what="the conversion",
        )
        assert job["status"] == "done", job
        moved = requests.get(
            f"{url}/jobs/{job_id}/mp3", headers=auth, allow_redirects=False, timeout=10
        )
        assert moved.status_code == 302
        location = moved.headers["Location"]
        assert location.startswith("http://127.0.0.1:") and "/vid2mp3/" in location
        mp3 = requests.get(location, timeout=30)
        assert len(mp3.content) == job["mp3_size"]
        assert os.listdir(tmp_path / "data" / "seaweedfs")  # the bucket's data, kept

        os.killpg(devstack.pid, signal.SIGINT)  # Ctrl-C
        assert devstack.wait(timeout=90) == 0
        wait_for(lambda: not _alive(sessions), timeout=30, what="every process to be gone")
    except BaseException:
        print(log_path.read_text(errors="replace")[-6000:])
        raise
    finally:
        for session in sessions:
            try:
                os.killpg(session, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        drop_database(settings)
        from core.adapters.redis.client import redis_client

        for redis_url, prefix in (
            (settings.redis_url, settings.redis_prefix),
            (settings.celery_broker_url, settings.celery_key_prefix),
        ):
            client = redis_client(redis_url)
            for key in client.scan_iter(match=prefix + "*"):
                client.delete(key)
            client.close()
