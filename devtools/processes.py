"""The one way `make up`, the tests and the benchmarks run the service's processes.

Each child runs in its own session, so a stop reaches its whole tree (gunicorn's workers,
Celery's pool, ffmpeg). Also: a free port, polling with a deadline, and the Celery ping.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, TypeVar

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on host (127.0.0.1 unless named) that nothing listens on right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(
    check: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call check until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last value: {last!r}")


def python(*args: str) -> list[str]:
    """argv running this interpreter (the project's virtualenv) with args."""
    return [sys.executable, *args]


def migrate_command(*args: str) -> list[str]:
    """argv of the one-shot schema migration (`python -m core.migrate`), run before the
    service's processes start, as compose's `migrate` service and the Kubernetes Job do."""
    return python("-m", "core.migrate", *args)


def service_commands(
    convert_workers: int = 1, beat: bool = True, flower: bool = True
) -> dict[str, list[str]]:
    """Name -> argv of every process of the service: API, workers (convert, notify, webhooks,
    fetch), sweeper, Flower."""
    commands = {"api": python("-m", "gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app")}
    for i in range(1, convert_workers + 1):
        if i == 1:
            commands["worker-convert"] = python("-m", "workers.convert")
        else:
            commands[f"worker-convert-{i}"] = python(
                "-m", "workers.convert", "-n", f"convert-{i}@%h"
            )
    commands["worker-notify"] = python("-m", "workers.notify")
    commands["worker-webhooks"] = python("-m", "workers.webhooks")
    commands["worker-fetch"] = python("-m", "workers.fetch")
    if beat:
        commands["beat"] = python("-m", "workers.beat")
    if flower:
        commands["flower"] = python("-m", "workers.flower", "--address=127.0.0.1")
    return commands


def worker_names(celery_app: Any, timeout: float = 1.0) -> set[str]:
    """Node names (`queue@host`) of the Celery workers that answer a ping; empty if none can."""
    try:
        replies = celery_app.control.ping(timeout=timeout)
    except Exception:  # the broker is down or restarting: ask again on the next poll
        return set()
    return {name for reply in replies for name in reply}


def workers_answer(celery_app: Any, queues: Iterable[str] = ("convert", "notify")) -> bool:
    """True once this host's worker of every queue answers a Celery ping."""
    host = socket.gethostname()
    return {f"{queue}@{host}" for queue in queues} <= worker_names(celery_app)


@dataclass
class Processes:
    """Named child processes, each in its own session; logs to log_dir/<name>.log or inherited.

    env is laid over this process's environment, minus the names in `drop`; process_env adds
    variables to single processes by name (e.g. a worker's metrics port)."""

    env: dict[str, str]
    log_dir: Path | None = None
    drop: tuple[str, ...] = ()
    process_env: dict[str, dict[str, str]] = field(default_factory=dict)
    running: dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str] | None = None) -> subprocess.Popen:
        """Start a process, or start it again with the command it had (as a supervisor would)."""
        argv = argv or self.commands[name]
        self.commands[name] = argv
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            output = open(self.log_dir / f"{name}.log", "ab")
            self._logs.append(output)
        inherited = {k: v for k, v in os.environ.items() if k not in self.drop}
        env = {**inherited, **self.env, **self.process_env.get(name, {})}
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        self.running[name] = process
        return process

    def run_once(self, name: str, argv: list[str], timeout: float = 300) -> int:
        """Run a one-shot process (the migration) to its end, as `start` would start it; its
        exit status. Killed, with its session, if it outlasts timeout seconds."""
        process = self.start(name, argv)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return -signal.SIGKILL
        finally:
            self.stop(name)

    def send(self, name: str, sig: int) -> None:
        """Send sig to the process's whole group."""
        process = self.running.get(name)
        if process is not None:
            _killpg(process.pid, sig)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Signal the process's group, wait up to timeout, then kill whatever is left of it."""
        process = self.running.pop(name, None)
        if process is not None:
            _killpg(process.pid, sig)
            _reap(process, time.monotonic() + timeout)

    def stop_all(self, timeout: float = 20) -> None:
        """SIGTERM every group at once; SIGKILL what is still there after timeout seconds."""
        stopping = list(self.running.values())
        self.running.clear()
        for process in stopping:
            _killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in stopping:
            _reap(process, deadline)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def exited(self) -> dict[str, int]:
        """Name -> exit status of the processes that are no longer running."""
        return {
            name: process.returncode
            for name, process in self.running.items()
            if process.poll() is not None
        }

    def check_alive(self) -> None:
        """Raise AssertionError, with the log's tail, if any process has exited."""
        for name, code in self.exited().items():
            raise AssertionError(f"{name} exited with {code}:\n{self.log(name)[-4000:]}")

    def log(self, name: str) -> str:
        if self.log_dir is None:
            return ""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def print_logs(self, tail: int = 4000, file: IO[str] | None = None) -> None:
        for name in self.running:
            print(
                f"----- {name} log (tail) -----\n{self.log(name)[-tail:]}", file=file or sys.stdout
            )


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # the whole group is gone already
        pass


def _reap(process: subprocess.Popen, deadline: float) -> None:
    """Wait for the group leader until deadline, SIGKILL its group if late; then sweep the group
    once more, so that no orphan (a pool child, an encoder) outlives its leader."""
    try:
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _killpg(process.pid, signal.SIGKILL)
        process.wait()
    _killpg(process.pid, signal.SIGKILL)
