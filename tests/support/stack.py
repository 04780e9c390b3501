"""Runs the real processes of the service for end-to-end tests: gunicorn, workers, Flower."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests

from core.bootstrap import Container, prepare
from core.settings import Settings
from tests.support.config import service_env
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    env: dict[str, str]
    base_url: str
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    process_env: dict[str, dict[str, str]] = field(default_factory=dict)
    _logs: list = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env, dotenv_path=None)

    def start(self, name: str, argv: list[str] | None = None) -> subprocess.Popen:
        """Start a process, or start it again with the command it had (as a supervisor would)."""
        argv = argv or self.commands[name]
        self.commands[name] = argv
        log = open(self.log_dir / f"{name}.log", "ab")
        self._logs.append(log)
        env = {**os.environ, **self.env, **self.process_env.get(name, {})}
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        for log in self._logs:
            log.close()

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, path: str) -> str:
        return self.base_url + path


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


@contextmanager
def running_stack(tmp: Path, extra_env: dict[str, str] | None = None,
                  flower: bool = False, beat: bool = False,
                  process_env: dict[str, dict[str, str]] | None = None) -> Iterator[Stack]:
    """API + convert worker + notify worker (+ Flower) as separate processes; cleaned up after.
    `process_env` adds variables to single processes by name (e.g. a worker's metrics port)."""
    run = uuid.uuid4().hex[:8]
    api_port = free_port()
    env = service_env(**{
        "MYSQL_DATABASE": f"vid2mp3_e2e_{run}", "REDIS_PREFIX": f"vid2mp3-e2e-{run}:",
        "CELERY_KEY_PREFIX": f"vid2mp3-e2e-{run}:", "API_PORT": api_port,
        "DATA_DIR": tmp / "data", "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        "WEB_CONCURRENCY": 2, "LOG_LEVEL": "INFO", "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "FLOWER_PORT": free_port(), "FLOWER_BASIC_AUTH": "flower:flower-test-password",
        **(extra_env or {})})
    log_dir = tmp / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(env=env, base_url=f"http://127.0.0.1:{api_port}", log_dir=log_dir,
                  process_env={name: {k: str(v) for k, v in values.items()}
                               for name, values in (process_env or {}).items()})
    container = Container(stack.settings)
    try:
        prepare(stack.settings)  # database, schema and admin, as gunicorn's start-up does
        stack.start("api", _python("-m", "gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"))
        stack.start("worker-convert", _python("-m", "workers.convert"))
        stack.start("worker-notify", _python("-m", "workers.notify"))
        stack.start("worker-webhooks", _python("-m", "workers.webhooks"))
        if beat:
            stack.start("beat", _python("-m", "workers.beat"))
        if flower:
            stack.start("flower", _python("-m", "workers.flower", "--address=127.0.0.1"))
        wait_for(lambda: _ready(stack), timeout=30, what="the API to be ready")
        wait_for(lambda: workers_answer(container), timeout=60, what="both workers")
        stack.container = container
        yield stack
    except BaseException:
        for name in stack.processes:
            print(f"----- {name} log -----\n{stack.log(name)[-4000:]}")
        raise
    finally:
        stack.stop_all()
        from tests.conftest import cleanup

        cleanup(container)


def _ready(stack: Stack) -> bool:
    for name, process in stack.processes.items():
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{stack.log(name)}")
    try:
        return requests.get(stack.url("/readyz"), timeout=2).status_code == 200
    except requests.RequestException:
        return False


def workers_answer(container: Container,
                   queues: tuple[str, ...] = ("convert", "notify", "webhooks")) -> bool:
    """True once this host's worker of every queue answers a Celery ping."""
    host = socket.gethostname()
    try:
        replies = container.celery.control.ping(timeout=1.0)
    except Exception:  # the broker is restarting: ask again on the next poll
        return False
    names = {name for reply in replies for name in reply}
    return {f"{queue}@{host}" for queue in queues} <= names
