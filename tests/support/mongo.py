"""Start a throwaway MongoDB-compatible server (nx-27017, SQLite-backed) for integration tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from typing import Iterator

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from devtools.processes import free_port
from tests.support.wait import scaled

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Run the package's entry point with this interpreter, so the venv's copy is used however
# the tests were started. `python -m nx_27017` does not work: the package has no __main__.
_LAUNCH = "import sys; from nx_27017.nx_27017 import main; sys.exit(main())"


class MongoStartError(RuntimeError):
    """The test server did not come up."""


class MongoServer:
    """An nx-27017 process that can be stopped and started again on the same port and data."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.port = free_port()
        self.uri = f"mongodb://{HOST}:{self.port}/"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        command = [
            sys.executable,
            "-c",
            _LAUNCH,
            "--host",
            HOST,
            "--port",
            str(self.port),
            # One SQLite file per logical database, so dropping a test database is real.
            "--data-dir",
            self.data_dir,
            # The defaults are fixed names in /tmp; a live pid in /tmp/nx_27017.pid makes a
            # second server refuse to start, so every server gets its own.
            "--pid-file",
            os.path.join(self.workdir, "server.pid"),
            "--log-file",
            os.path.join(self.workdir, "server.log"),
        ]
        output_path = os.path.join(self.workdir, "stdout.log")
        with open(output_path, "ab") as output:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_ready(
                self.process, self.port, self.uri, time.monotonic() + scaled(timeout), output_path
            )
        except BaseException:
            self.stop()
            raise
        return self.uri

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


@contextmanager
def running_mongo(timeout: float = START_TIMEOUT_S) -> Iterator[str]:
    """Run nx-27017 on a free port with its data in a temp dir; yield its URI, stop it after."""
    with tempfile.TemporaryDirectory(prefix="nx-27017-") as workdir:
        server = MongoServer(workdir)
        try:
            yield server.start(timeout)
        finally:
            server.stop()


def _wait_until_ready(
    process: subprocess.Popen, port: int, uri: str, deadline: float, output_path: str
) -> None:
    """Poll until the server accepts a connection and answers ping, or fail at the deadline."""

    def check_alive() -> None:
        if process.poll() is not None:
            raise MongoStartError(
                f"nx-27017 exited with {process.returncode}:\n{_tail(output_path)}"
            )
        if time.monotonic() >= deadline:
            raise MongoStartError(
                f"nx-27017 did not answer within the deadline:\n{_tail(output_path)}"
            )

    while True:  # cheap TCP probes first: the server is up in a fraction of a second
        check_alive()
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                break
        except OSError:
            # Waiting on the process both paces the poll and notices an early exit at once.
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.05)
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=250, connectTimeoutMS=1000)
    try:
        while True:
            check_alive()
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                continue  # each failed attempt has already waited serverSelectionTimeoutMS
    finally:
        client.close()


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server, and kill it when it does not stop in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=scaled(STOP_TIMEOUT_S))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read()[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""
