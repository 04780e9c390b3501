"""Run a command on a pseudo-terminal, as a person at a terminal would, and read its screen."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time
from pathlib import Path
from typing import Self

from tests.support.wait import scaled

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


class Terminal:
    """A child process whose stdin, stdout and stderr are one pty (its controlling terminal)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str | Path,
        columns: int = 120,
        rows: int = 40,
    ):
        self.raw = b""
        self.returncode: int | None = None
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: pty.fork made the pty its controlling terminal
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    @property
    def text(self) -> str:
        """Everything shown so far, without colours and cursor movements."""
        return ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def _pump(self, timeout: float) -> bool:
        """Read what is there within timeout; False once the terminal is closed."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed its side
            return False
        self.raw += data
        return bool(data)

    def expect(self, text: str, timeout: float = 30.0) -> None:
        """Wait until `text` has been shown; fail with the screen so far after timeout (scaled)."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while text not in self.text:
            if time.monotonic() > deadline or not self._pump(min(0.2, deadline - time.monotonic())):
                if text in self.text:
                    return
                raise AssertionError(f"{text!r} did not appear within {timeout} s:\n{self.text}")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 60.0) -> int:
        """Read until the child exits; its exit status (128+N for signal N)."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            alive = self._pump(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._pump(0.05):  # what it wrote just before it exited
                    pass
                self.returncode = os.waitstatus_to_exitcode(status)
                if self.returncode < 0:
                    self.returncode = 128 - self.returncode
            elif time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"still running after {timeout} s:\n{self.text}")
            elif not alive:
                time.sleep(0.01)  # the pty closed; the process is about to exit
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.returncode = -9

    def close(self) -> None:
        self.kill()
        os.close(self.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
