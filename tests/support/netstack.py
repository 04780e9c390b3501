"""The whole service across hosts on a private network (tests/support/netns.py): a data host
(its own MariaDB, a Redis for the app, a Redis as broker, an SMTP sink; the directory blob
store on the shared disk), an API host (gunicorn) and two worker hosts (convert, notify and
webhooks workers; beat on the second)."""

from __future__ import annotations

import email
import mailbox
import shutil
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Iterator

import MySQLdb
import redis as redis_lib
import requests

from core.bootstrap import Container
from core.settings import Settings
from devtools import processes as procs
from devtools.processes import worker_names
from tests.support.config import service_env
from tests.support.netns import Host, Network
from tests.support.wait import wait_for

QUEUES = ("convert", "notify", "webhooks")
API_PORT = 8000  # each host has its own ports: fixed ones are safe inside a namespace


@dataclass
class NetStack:
    network: Network
    data: Host
    api: Host
    workers: list[Host]
    env: dict[str, str]
    mysql_ip: str
    redis_ip: str
    broker_ip: str
    smtp_ip: str
    mail_dir: Path
    container: Container | None = None
    services: dict[str, list[str]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{self.api.address}:{API_PORT}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env, dotenv_path=None)

    def host_of(self, name: str) -> Host:
        return next(h for h in [self.data, self.api, *self.workers] if h.name == name)

    def mails(self) -> list[Message]:
        box = mailbox.Maildir(str(self.mail_dir), factory=None, create=False)
        return [email.message_from_bytes(box.get_bytes(key)) for key in box.keys()]

    def mails_about(self, job_id: str) -> list[Message]:
        found = []
        for message in self.mails():
            parts = message.walk() if message.is_multipart() else [message]
            text = " ".join(
                (p.get_payload(decode=True) or b"").decode(errors="replace") for p in parts
            )
            if job_id in text:
                found.append(message)
        return found

    def live_workers(self) -> set[str]:
        assert self.container is not None
        return worker_names(self.container.celery, timeout=1.0)

    def all_workers_answer(self) -> bool:
        wanted = {f"{q}@{h.name}" for q in QUEUES for h in self.workers if h.powered}
        return wanted <= self.live_workers()

    def host_running(self, pid: int) -> Host:
        """The worker host whose namespace the process runs in."""
        ns = subprocess.run(
            ["ip", "netns", "identify", str(pid)], capture_output=True, text=True
        ).stdout.strip()
        return next(h for h in self.workers if h.ns == ns)

    def other_worker(self, host: Host) -> Host:
        return next(h for h in self.workers if h is not host)

    @property
    def beat_host(self) -> Host:
        return next(h for h in self.workers if f"{h.name}-beat" in h.processes.running)

    def move_beat(self, to: Host) -> None:
        """Run beat on `to` instead (as Kubernetes reschedules the pod of a lost node)."""
        old = self.beat_host
        if old is to:
            return
        if old.powered:
            old.processes.stop(f"{old.name}-beat")
        else:
            old.processes.running.pop(f"{old.name}-beat")
        to.start(f"{to.name}-beat", self.services["beat"])

    def print_logs(self) -> None:
        for host in [self.data, self.api, *self.workers]:
            host.processes.print_logs()


def _install_mariadb(datadir: Path, log: Path) -> None:
    installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if installer is None:
        raise AssertionError("mariadb-install-db is not installed (Debian: mariadb-server)")
    with open(log, "ab") as out:
        subprocess.run(
            [installer, "--no-defaults", f"--datadir={datadir}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=out, stderr=subprocess.STDOUT, timeout=180,
        )  # fmt: skip


def _mysql_up(host: str) -> bool:
    try:
        MySQLdb.connect(host=host, port=3306, user="root", connect_timeout=1).close()
        return True
    except MySQLdb.Error:
        return False


def _redis_up(host: str) -> bool:
    try:
        return bool(redis_lib.Redis(host=host, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis_lib.RedisError:
        return False


def _api_ready(stack: NetStack) -> bool:
    stack.api.processes.check_alive()
    try:
        return requests.get(stack.url("/readyz"), timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def running_netstack(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[NetStack]:
    """Build the network and start every process; tear all of it down afterwards."""
    log_dir = tmp / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    network = Network(log_dir)
    try:
        data = network.add_host("data", addresses=4)
        mysql_ip, redis_ip, broker_ip, smtp_ip = data.addresses
        api = network.add_host("api")
        workers = [network.add_host("wa"), network.add_host("wb")]
        run = uuid.uuid4().hex[:8]
        mail_dir = tmp / "mail"
        env = service_env(
            **{
                "MYSQL_HOST": mysql_ip,
                "MYSQL_PORT": 3306,
                "MYSQL_USER": "root",
                "MYSQL_PASSWORD": "any-password",  # the server skips grant tables
                "MYSQL_DATABASE": f"vid2mp3_net_{run}",
                "REDIS_URL": f"redis://{redis_ip}:6379/0",
                "CELERY_BROKER_URL": f"redis://{broker_ip}:6379/0",
                "SMTP_URL": f"smtp://{smtp_ip}:2525",
                "API_HOST": "0.0.0.0",
                "API_PORT": API_PORT,
                "PUBLIC_BASE_URL": f"http://{api.address}:{API_PORT}",
                "DATA_DIR": tmp / "data",
                "WEB_CONCURRENCY": 2,
                "LOG_LEVEL": "INFO",
                "WEBHOOK_ALLOW_PRIVATE": "true",
                **(extra_env or {}),
            }
        )
        network.env.update(env)
        for host in [data, api, *workers]:
            host.processes.env = env
        stack = NetStack(
            network=network, data=data, api=api, workers=workers, env=env, mysql_ip=mysql_ip,
            redis_ip=redis_ip, broker_ip=broker_ip, smtp_ip=smtp_ip, mail_dir=mail_dir,
        )  # fmt: skip
        try:
            _start_data_host(stack, tmp)
            _start_service(stack)
            yield stack
        except BaseException:
            stack.print_logs()
            raise
    finally:
        network.teardown()


def _start_data_host(stack: NetStack, tmp: Path) -> None:
    data = stack.data
    datadir = tmp / "mariadb"
    datadir.mkdir()
    _install_mariadb(datadir, stack.network.log_dir / "data-mariadb-install.log")
    data.start(
        "data-mariadb",
        [
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={datadir}", "--user=root",
            f"--socket={datadir}/mysqld.sock", f"--pid-file={datadir}/mysqld.pid",
            f"--bind-address={stack.mysql_ip}", "--port=3306", "--skip-grant-tables",
            "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
            "--max-connections=300", f"--log-error={stack.network.log_dir}/mariadb-error.log",
        ],
    )  # fmt: skip
    for name, address in (("data-redis", stack.redis_ip), ("data-broker", stack.broker_ip)):
        workdir = tmp / name
        workdir.mkdir()
        data.start(
            name,
            ["redis-server", "--bind", address, "--port", "6379", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "no"],
        )  # fmt: skip
    mailbox.Maildir(str(stack.mail_dir), create=True)  # what the sink delivers into
    data.start(
        "data-smtp",
        procs.python(
            "-m", "aiosmtpd", "-n", "-l", f"{stack.smtp_ip}:2525",
            "-c", "aiosmtpd.handlers.Mailbox", str(stack.mail_dir),
        ),
    )  # fmt: skip
    wait_for(lambda: _mysql_up(stack.mysql_ip), timeout=60, what="MariaDB on the data host")
    wait_for(lambda: _redis_up(stack.redis_ip), timeout=20, what="Redis on the data host")
    wait_for(lambda: _redis_up(stack.broker_ip), timeout=20, what="the broker on the data host")


def _start_service(stack: NetStack) -> None:
    commands = procs.service_commands(beat=True, flower=False)
    code = stack.api.processes.run_once("api-migrate", stack.api.wrap(procs.migrate_command()))
    if code != 0:
        raise AssertionError(f"migration exited {code}:\n{stack.api.processes.log('api-migrate')}")
    stack.api.start("api", commands["api"])
    for host in stack.workers:
        for queue in QUEUES:
            stack.services[f"worker-{queue}"] = commands[f"worker-{queue}"]
            host.start(f"{host.name}-worker-{queue}", commands[f"worker-{queue}"])
    stack.services["beat"] = commands["beat"]
    beat_host = stack.workers[-1]
    beat_host.start(f"{beat_host.name}-beat", commands["beat"])
    stack.container = Container(stack.settings)
    wait_for(lambda: _api_ready(stack), timeout=60, what="the API host to be ready")
    wait_for(stack.all_workers_answer, timeout=90, what="every worker of both worker hosts")
