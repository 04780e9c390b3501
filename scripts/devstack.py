"""`make up`: run the whole stack locally and keep it running, like a tiny process supervisor.

First run: writes .env with generated secrets and prints the admin login once. Then it checks
the settings, creates the database, and starts gunicorn, the workers (one per queue, N convert
workers if asked), the sweeper (beat) and Flower. A process that dies is restarted with
backoff, as Kubernetes would; Ctrl-C stops every process it started.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".env"


def write_env_file() -> None:
    """Create .env with generated secrets on the first run, and print the logins once.

    Created 0600 in one step, refusing to follow a link or to replace a file that appeared
    meanwhile: the secrets are never readable by others, not even for a moment."""
    if ENV_FILE.exists() or ENV_FILE.is_symlink():
        return
    admin_password = secrets.token_urlsafe(16)
    flower_password = secrets.token_urlsafe(16)
    text = ("# Written by `make up` on the first run. Variables set in the environment win.\n"
            f"JWT_SECRET={secrets.token_urlsafe(48)}\n"
            "ADMIN_EMAIL=admin@example.com\n"
            f"ADMIN_PASSWORD={admin_password}\n"
            f"FLOWER_BASIC_AUTH=admin:{flower_password}\n"
            "API_PORT=8080\n"
            "FLOWER_PORT=5555\n"
            "DATA_DIR=./data\n")
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    print(f"wrote {ENV_FILE.name}: admin login admin@example.com / {admin_password}, "
          f"Flower login admin / {flower_password} (shown once; they stay in .env)", flush=True)


def load_environment() -> dict[str, str]:
    from dotenv import dotenv_values

    env = {k: v for k, v in dotenv_values(ENV_FILE).items() if v is not None}
    env.update(os.environ)  # the environment wins over .env
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    env: dict[str, str] = field(default_factory=dict)  # on top of the shared environment

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env={**env, **self.env},
                                        start_new_session=True)
        self.started_at = time.monotonic()
        print(f"[devstack] started {self.name} (pid {self.process.pid})", flush=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass


def children(convert_workers: int) -> list[Child]:
    py = sys.executable
    procs = [Child("api", [py, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"])]
    for i in range(1, convert_workers + 1):
        node = "convert@%h" if i == 1 else f"convert-{i}@%h"
        procs.append(Child(f"worker-convert-{i}", [py, "-m", "workers.convert", "-n", node]))
    procs.append(Child("worker-notify", [py, "-m", "workers.notify"]))
    procs.append(Child("worker-webhooks", [py, "-m", "workers.webhooks"]))
    procs.append(Child("beat", [py, "-m", "workers.beat"]))
    procs.append(Child("flower", [py, "-m", "workers.flower", "--address=127.0.0.1"]))
    return procs


def metrics_ports(procs: list[Child], base: int) -> None:
    """WORKER_METRICS_PORT=P: the workers on this one host serve /metrics on P, P+1, ..."""
    workers = [child for child in procs if child.name.startswith("worker-")]
    for offset, child in enumerate(workers):
        child.env["WORKER_METRICS_PORT"] = str(base + offset)
        print(f"[devstack] {child.name} metrics on http://127.0.0.1:{base + offset}/metrics",
              flush=True)


def prepare(env: dict[str, str]) -> None:
    """Validate the settings and create the database, schema and admin before serving."""
    os.environ.update(env)
    from core.bootstrap import prepare as prepare_database
    from core.domain import Unavailable
    from core.settings import ConfigError, Settings

    try:
        settings = Settings.from_env(dotenv_path=None)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    if ":" not in settings.flower_basic_auth:
        sys.exit("configuration error: FLOWER_BASIC_AUTH must be user:password")
    try:
        prepare_database(settings, wait_seconds=30)
    except Unavailable:
        sys.exit(f"MySQL at {settings.mysql_host}:{settings.mysql_port} is not reachable")
    print(f"[devstack] API on http://127.0.0.1:{settings.api_port} "
          f"(docs at /docs), Flower on http://127.0.0.1:{settings.flower_port}", flush=True)


def supervise(procs: list[Child], env: dict[str, str]) -> int:
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in procs:
        child.start(env)
    while not stopping:
        now = time.monotonic()
        for child in procs:
            if child.process is None or child.process.poll() is None:
                if child.process is None and now >= child.next_start:
                    child.start(env)
                continue
            code = child.process.returncode
            lived = now - child.started_at
            child.restarts = 0 if lived > 60 else child.restarts + 1
            delay = min(30.0, 0.5 * 2 ** child.restarts)
            print(f"[devstack] {child.name} exited with {code}; restarting in {delay:.1f} s",
                  flush=True)
            child.process = None
            child.next_start = now + delay
        time.sleep(0.2)
    print("[devstack] stopping...", flush=True)
    for child in procs:
        child.stop(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in procs:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.stop(signal.SIGKILL)
            child.process.wait()
    print("[devstack] stopped", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convert-workers", type=int, default=1,
                        help="convert worker processes to run (the local `kubectl scale`)")
    args = parser.parse_args()
    write_env_file()
    env = load_environment()
    prepare(env)
    procs = children(max(1, args.convert_workers))
    base = int(env.get("WORKER_METRICS_PORT") or 9808)  # 0 in .env or the environment: off
    if base:
        metrics_ports(procs, base)
    return supervise(procs, env)


if __name__ == "__main__":
    sys.exit(main())
