"""Backing services the fault tests own, so they can stop and restart them: Redis and SMTP."""

from __future__ import annotations

import os
import shutil
import subprocess

import redis as redis_lib
from aiosmtpd.controller import Controller

from tests.support.smtp import Inbox
from tests.support.stack import free_port
from tests.support.wait import wait_for


class RedisServer:
    """A private redis-server without persistence: a restart starts it empty."""

    def __init__(self, workdir: str, *args: str):
        self.workdir = workdir
        self.args = args  # more redis-server options, e.g. "--maxmemory", "16mb"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
                "--logfile",
                os.path.join(self.workdir, "redis.log"),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_for(lambda: _pings(client), timeout=10, what="redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def _pings(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.RedisError:
        return False


class SMTPServer:
    """aiosmtpd on a fixed port that can go down and come back, keeping one inbox."""

    def __init__(self):
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None

    def mails_about(self, job_id: str) -> list:
        return [
            m
            for m in self.inbox.received()
            if job_id in m.get_payload(decode=True).decode(errors="replace")
        ]
