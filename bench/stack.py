"""The real service as processes (gunicorn, convert and notify workers) on throwaway names."""
from __future__ import annotations

import socket
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bench.client import ApiClient
from core.bootstrap import Container
from core.domain import Job, JobStatus
from tests.support.config import test_env
from tests.support.stack import Stack, _ready, free_port
from tests.support.wait import wait_for


@dataclass
class BenchStack:
    """The running processes, the settings they share and an admin client."""

    stack: Stack
    container: Container
    port: int
    admin: ApiClient

    @property
    def settings(self):
        return self.container.settings

    def pid(self, name: str) -> int:
        return self.stack.processes[name].pid

    @property
    def api_pid(self) -> int:
        return self.pid("api")

    def convert_pids(self) -> list[int]:
        return [p.pid for n, p in self.stack.processes.items() if n.startswith("worker-convert")]

    def all_pids(self) -> list[int]:
        return [p.pid for p in self.stack.processes.values()]

    def client(self) -> ApiClient:
        """A new connection logged in with the admin's token."""
        api = ApiClient("127.0.0.1", self.port)
        api.token = self.admin.token
        return api

    def start_convert_worker(self, index: int) -> None:
        """Start another convert worker, `convert-<index>@host`, and wait until it answers."""
        node = f"convert-{index}@%h"
        self.stack.start(f"worker-convert-{index}", _python("-m", "workers.convert", "-n", node))
        expected = f"convert-{index}@{socket.gethostname()}"
        wait_for(lambda: expected in _worker_names(self.container), timeout=60,
                 what=f"worker {expected}")

    def stop(self, name: str) -> None:
        self.stack.stop(name)

    def wait_job(self, job_id: str, timeout: float, notified: bool = False,
                 interval: float = 0.02) -> Job:
        """Read the job row straight from MySQL (no API load) until it is finished."""
        def finished() -> Job | None:
            job = self.container.job_repo.get(job_id)
            if job is None or job.status not in (JobStatus.DONE, JobStatus.FAILED):
                return None
            if notified and job.status is JobStatus.DONE and job.notified_at is None:
                return None
            return job
        return wait_for(finished, timeout=timeout, interval=interval, what=f"job {job_id}")


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _worker_names(container: Container) -> set[str]:
    replies = container.celery.control.ping(timeout=1.0)
    return {name for reply in replies for name in reply}


@contextmanager
def running(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[BenchStack]:
    """API (production gunicorn.conf.py) + one convert + one notify worker; all removed after."""
    run = uuid.uuid4().hex[:8]
    port = free_port()
    env = test_env(
        MYSQL_DATABASE=f"vid2mp3_bench_{run}", REDIS_PREFIX=f"vid2mp3-bench-{run}:",
        CELERY_KEY_PREFIX=f"vid2mp3-bench-{run}:", API_PORT=port, DATA_DIR=tmp / "data",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", LOG_LEVEL="INFO",
        **(extra_env or {}))
    log_dir = tmp / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(env=env, base_url=f"http://127.0.0.1:{port}", log_dir=log_dir)
    container = Container(stack.settings)
    admin = ApiClient("127.0.0.1", port)
    try:
        container.db.ping()  # database, schema and admin before the processes race for them
        stack.start("api", _python("-m", "gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"))
        stack.start("worker-convert", _python("-m", "workers.convert"))
        stack.start("worker-notify", _python("-m", "workers.notify"))
        wait_for(lambda: _ready(stack), timeout=60, what="the API to be ready")
        host = socket.gethostname()
        wait_for(lambda: {f"convert@{host}", f"notify@{host}"} <= _worker_names(container),
                 timeout=60, what="both workers")
        admin.login(stack.settings.admin_email, stack.settings.admin_password)
        yield BenchStack(stack, container, port, admin)
    except BaseException:
        for name in stack.processes:
            print(f"----- {name} log (tail) -----\n{stack.log(name)[-3000:]}", file=sys.stderr)
        raise
    finally:
        admin.close()
        stack.stop_all()
        from tests.conftest import cleanup

        cleanup(container)
