"""`make up` (scripts/devstack.py): it starts every process, and Ctrl-C leaves none behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid

import psutil
import pytest
import requests

from core.bootstrap import Container
from core.settings import Settings
from devtools.processes import ROOT, free_port, worker_names
from tests.support.config import service_env
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

# What `make up CONVERT_WORKERS=2` runs (see the Makefile's `up` target).
DEVSTACK = [sys.executable, "scripts/devstack.py", "--convert-workers", "2"]
SERVICES = 7  # api, two convert workers, notify and webhooks workers, beat, Flower


def sessions_alive(sessions: set[int]) -> list[str]:
    """The processes, zombies aside, still running in any of these sessions."""
    alive = []
    for proc in psutil.process_iter(["pid", "name", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) in sessions:
                alive.append(f"{proc.info['name']} ({proc.pid})")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


def api_ready(url: str, devstack: subprocess.Popen) -> bool:
    assert devstack.poll() is None, f"devstack exited with {devstack.returncode}"
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_make_up_starts_everything_and_ctrl_c_stops_it_all(tmp_path):
    run = uuid.uuid4().hex[:8]
    api_port, flower_port = free_port(), free_port()
    env = service_env(
        MYSQL_DATABASE=f"vid2mp3_up_{run}",
        REDIS_PREFIX=f"vid2mp3-up-{run}:",
        CELERY_KEY_PREFIX=f"vid2mp3-up-{run}:",
        API_PORT=api_port,
        FLOWER_PORT=flower_port,
        FLOWER_BASIC_AUTH="flower:flower-test-password",
        DATA_DIR=tmp_path / "data",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{api_port}",
        WEB_CONCURRENCY=1,
        MONGO_URI="",
        SMTP_URL="",  # directory store and outbox, whatever a .env says
        WORKER_METRICS_PORT=0,
    )  # no fixed metrics ports (9808, ...) that another run may hold
    container = Container(Settings.from_env(env, dotenv_path=None))
    url = f"http://127.0.0.1:{api_port}"
    log = open(tmp_path / "devstack.log", "wb")
    devstack = subprocess.Popen(
        [*DEVSTACK, "--env-file", str(tmp_path / ".env")],
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sessions = {devstack.pid}
    try:
        wait_for(lambda: api_ready(url, devstack), timeout=90, what="the API to be ready")
        host = socket.gethostname()
        nodes = {f"convert@{host}", f"convert-2@{host}", f"notify@{host}"}
        wait_for(
            lambda: nodes <= worker_names(container.celery),
            timeout=90,
            what="every worker to answer a ping",
        )
        wait_for(lambda: _listening(flower_port), timeout=60, what="Flower")
        services = psutil.Process(devstack.pid).children()
        assert len(services) == SERVICES, [p.cmdline() for p in services]
        sessions |= {os.getsid(p.pid) for p in services}
        assert len(sessions) == SERVICES + 1  # each service in its own session
        assert len(sessions_alive(sessions)) > SERVICES  # gunicorn's and Celery's children too

        [notify] = [p for p in services if "workers.notify" in p.cmdline()]
        os.killpg(notify.pid, signal.SIGKILL)  # a crash: `make up` starts it again
        again = wait_for(
            lambda: _service(devstack, "workers.notify", other_than=notify.pid),
            timeout=30,
            what="the notify worker to be restarted",
        )
        sessions.add(os.getsid(again.pid))
        wait_for(
            lambda: f"notify@{host}" in worker_names(container.celery),
            timeout=90,
            what="the restarted notify worker to answer a ping",
        )

        os.killpg(devstack.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group

        assert devstack.wait(timeout=60) == 0
        wait_for(
            lambda: not sessions_alive(sessions),
            timeout=15,
            what=f"every process of `make up` to be gone ({len(sessions)} sessions)",
        )
        assert sessions_alive(sessions) == []
        assert not _listening(api_port) and not _listening(flower_port)
        assert not worker_names(container.celery)
    except BaseException:
        log.flush()
        print((tmp_path / "devstack.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        for session in sessions:  # leave nothing behind, whatever happened above
            try:
                os.killpg(session, signal.SIGKILL)
            except ProcessLookupError:
                pass
        devstack.wait()
        log.close()
        from tests.conftest import cleanup

        cleanup(container)


def _service(devstack: subprocess.Popen, module: str, other_than: int) -> psutil.Process | None:
    for child in psutil.Process(devstack.pid).children():
        try:
            if module in child.cmdline() and child.pid != other_than:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
