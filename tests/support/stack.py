"""Runs the real processes of the service for end-to-end tests: gunicorn, workers, Flower."""

from __future__ import annotations

import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

from core.bootstrap import Container
from core.settings import Settings
from devtools import processes as procs
from devtools.processes import Processes, free_port
from tests.support.config import service_env
from tests.support.wait import scaled, wait_for

__all__ = ["Stack", "free_port", "run_migration", "running_api", "running_stack", "workers_answer"]


@dataclass
class Stack(Processes):
    """The service's processes, logging to log_dir/<name>.log, and the API's base URL."""

    base_url: str = ""

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env, dotenv_path=None)

    @property
    def processes(self) -> dict[str, subprocess.Popen]:
        return self.running

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def running_stack(
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    flower: bool = False,
    beat: bool = False,
    process_env: dict[str, dict[str, str]] | None = None,
) -> Iterator[Stack]:
    """API + convert worker + notify worker (+ Flower) as separate processes; cleaned up after.
    `process_env` adds variables to single processes by name (e.g. a worker's metrics port)."""
    run = uuid.uuid4().hex[:8]
    api_port = free_port()
    env = service_env(
        **{
            "MYSQL_DATABASE": f"vid2mp3_e2e_{run}",
            "REDIS_PREFIX": f"vid2mp3-e2e-{run}:",
            "CELERY_KEY_PREFIX": f"vid2mp3-e2e-{run}:",
            "API_PORT": api_port,
            "DATA_DIR": tmp / "data",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "WEB_CONCURRENCY": 2,
            "LOG_LEVEL": "INFO",
            "NOTIFY_RETRY_BASE_SECONDS": "0.5",
            "FLOWER_PORT": free_port(),
            "FLOWER_BASIC_AUTH": "flower:flower-test-password",
            **(extra_env or {}),
        }
    )
    log_dir = tmp / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        env=env,
        log_dir=log_dir,
        base_url=f"http://127.0.0.1:{api_port}",
        process_env={
            name: {k: str(v) for k, v in values.items()}
            for name, values in (process_env or {}).items()
        },
    )
    container = Container(stack.settings)
    try:
        run_migration(stack)  # database, schema and admin, as compose's `migrate` service
        for name, argv in procs.service_commands(beat=beat, flower=flower).items():
            stack.start(name, argv)
        wait_for(lambda: _ready(stack), timeout=30, what="the API to be ready")
        wait_for(lambda: workers_answer(container), timeout=60, what="both workers")
        stack.container = container
        yield stack
    except BaseException:
        stack.print_logs()
        raise
    finally:
        stack.stop_all()
        from tests.support.config import cleanup

        cleanup(container)


def run_migration(processes: Processes, *args: str) -> None:
    """`python -m core.migrate` with the stack's settings, to its end, before any process
    starts; fails the test with its log unless it exits 0."""
    code = processes.run_once("migrate", procs.migrate_command(*args), timeout=scaled(120))
    if code != 0:
        raise AssertionError(f"the migration exited with {code}:\n{processes.log('migrate')}")


@contextmanager
def running_api(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The API alone under gunicorn (no workers: jobs stay queued), for tests of the HTTP
    server itself; its own database and key prefixes, removed after."""
    run = uuid.uuid4().hex[:8]
    api_port = free_port()
    env = service_env(
        **{
            "MYSQL_DATABASE": f"vid2mp3_e2e_{run}",
            "REDIS_PREFIX": f"vid2mp3-e2e-{run}:",
            "CELERY_KEY_PREFIX": f"vid2mp3-e2e-{run}:",
            "API_PORT": api_port,
            "DATA_DIR": tmp / "data",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
    )
    log_dir = tmp / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(env=env, log_dir=log_dir, base_url=f"http://127.0.0.1:{api_port}")
    container = Container(stack.settings)
    try:
        run_migration(stack)
        stack.start("api", procs.service_commands(beat=False, flower=False)["api"])
        wait_for(lambda: _ready(stack), timeout=30, what="the API to be ready")
        stack.container = container
        yield stack
    except BaseException:
        stack.print_logs()
        raise
    finally:
        stack.stop_all()
        from tests.support.config import cleanup

        cleanup(container)


def _ready(stack: Stack) -> bool:
    stack.check_alive()
    try:
        return requests.get(stack.url("/readyz"), timeout=2).status_code == 200
    except requests.RequestException:
        return False


def workers_answer(
    container: Container, queues: tuple[str, ...] = ("convert", "notify", "webhooks")
) -> bool:
    """True once this host's worker of every queue answers a Celery ping."""
    return procs.workers_answer(container.celery, queues)
