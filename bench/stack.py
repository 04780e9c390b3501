"""The real service as processes (gunicorn, convert and notify workers) on throwaway names.

Its processes run through devtools (the process runner `make up` and the tests share too).
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bench.client import ApiClient
from core.bootstrap import Container
from core.domain.jobs import Job, JobStatus
from core.settings import Settings
from devtools import processes as procs
from devtools.processes import Processes, free_port, python, wait_for
from tests.support.config import drop_database

__all__ = ["BenchStack", "bench_env", "cleanup", "free_port", "running", "wait_for", "worker_names"]


def bench_env(run: str, port: int, data_dir: Path) -> dict[str, str]:
    """Settings of one benchmark run: throwaway names, local services, bench-only secrets."""
    return {
        "JWT_SECRET": "bench-only-secret-" + uuid.uuid4().hex,
        "ADMIN_EMAIL": "bench-admin@example.com",
        "ADMIN_PASSWORD": "bench-" + uuid.uuid4().hex[:16],
        "MYSQL_HOST": os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1"),
        "MYSQL_PORT": os.environ.get("BENCH_MYSQL_PORT", "3306"),
        "MYSQL_USER": os.environ.get("BENCH_MYSQL_USER", "root"),
        "MYSQL_PASSWORD": os.environ.get("BENCH_MYSQL_PASSWORD", ""),
        "MYSQL_DATABASE": f"vid2mp3_bench_{run}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_PREFIX": f"vid2mp3-bench-{run}:",
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/1"),
        "CELERY_KEY_PREFIX": f"vid2mp3-bench-{run}:",
        "API_PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",  # the production default
        # Every load client uploads as the admin: one account sending many uploads at once.
        "QUOTA_CONCURRENT_UPLOADS": "64",
        # Directory store and outbox mail whatever a developer's .env says.
        "MONGO_URI": "",
        "SMTP_URL": "",
    }


@dataclass
class BenchStack:
    """The running processes, the settings they share and an admin client."""

    processes: Processes
    container: Container
    port: int
    admin: ApiClient

    @property
    def settings(self) -> Settings:
        return self.container.settings

    def pid(self, name: str) -> int:
        return self.processes.running[name].pid

    @property
    def api_pid(self) -> int:
        return self.pid("api")

    def convert_pids(self) -> list[int]:
        return [p.pid for n, p in self.processes.running.items() if n.startswith("worker-convert")]

    def all_pids(self) -> list[int]:
        return [p.pid for p in self.processes.running.values()]

    def client(self) -> ApiClient:
        """A new connection with the admin's token."""
        api = ApiClient("127.0.0.1", self.port)
        api.token = self.admin.token
        return api

    def start_convert_worker(self, index: int) -> str:
        """Start another convert worker, `convert-<index>@host`; its node name once it answers."""
        self.processes.start(
            f"worker-convert-{index}", python("-m", "workers.convert", "-n", f"convert-{index}@%h")
        )
        node = f"convert-{index}@{socket.gethostname()}"
        wait_for(lambda: node in worker_names(self.container), timeout=60, what=node)
        return node

    def stop(self, name: str) -> None:
        self.processes.stop(name, timeout=30)

    def wait_job(
        self, job_id: str, timeout: float, notified: bool = False, interval: float = 0.02
    ) -> Job:
        """Read the job row straight from MySQL (no API load) until it is finished."""

        def finished() -> Job | None:
            job = self.container.job_repo.get(job_id)
            if job is None or job.status not in (JobStatus.DONE, JobStatus.FAILED):
                return None
            if notified and job.status is JobStatus.DONE and job.notified_at is None:
                return None
            return job

        return wait_for(finished, timeout=timeout, interval=interval, what=f"job {job_id}")


def worker_names(container: Container) -> set[str]:
    return procs.worker_names(container.celery)


def _api_ready(processes: Processes, port: int) -> bool:
    processes.check_alive()
    try:
        with ApiClient("127.0.0.1", port, timeout=2) as probe:
            return probe.request("GET", "/readyz")[0] == 200
    except OSError:
        return False


def cleanup(container: Container) -> None:
    """Drop the run's database and delete only the Redis keys under the run's prefixes."""
    from core.adapters.redis.client import redis_client

    settings = container.settings
    try:
        drop_database(container.settings)
    finally:
        for url, prefix in (
            (settings.redis_url, settings.redis_prefix),
            (settings.celery_broker_url, settings.celery_key_prefix),
        ):
            client = redis_client(url)
            try:
                for key in client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=500):
                    client.delete(key)
            finally:
                client.close()


@contextmanager
def running(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[BenchStack]:
    """API (production gunicorn.conf.py) + one convert + one notify worker; all removed after.
    `extra_env` changes settings (another blob store)."""
    run = uuid.uuid4().hex[:8]
    port = free_port()
    log_dir = tmp / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**bench_env(run, port, tmp / "data"), **(extra_env or {})}
    # Production defaults whatever the developer's shell sets for `make up`.
    processes = Processes(env, log_dir, drop=("WEB_CONCURRENCY", "API_THREADS"))
    container = Container(Settings.from_env(env, dotenv_path=None))
    admin = ApiClient("127.0.0.1", port)
    try:
        # database, schema and admin, as compose's one-shot `migrate` service makes them
        if processes.run_once("migrate", procs.migrate_command(), timeout=120) != 0:
            raise RuntimeError("the migration failed:\n" + processes.log("migrate"))
        for name, argv in procs.service_commands(beat=False, flower=False).items():
            processes.start(name, argv)
        wait_for(lambda: _api_ready(processes, port), timeout=60, what="the API to be ready")
        wait_for(lambda: procs.workers_answer(container.celery), timeout=60, what="both workers")
        admin.login(env["ADMIN_EMAIL"], env["ADMIN_PASSWORD"])
        yield BenchStack(processes, container, port, admin)
    except BaseException:
        processes.print_logs(3000, file=sys.stderr)
        raise
    finally:
        admin.close()
        processes.stop_all()
        cleanup(container)
