"""Running ffmpeg as an untrusted child: no secrets, resource limits, a deadline, never orphaned."""

from __future__ import annotations

import ctypes
import functools
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from core.domain.errors import Stopped

# ffmpeg releases this code was tested with; the convert worker refuses to start on others.
TESTED_FFMPEG = ((9, 0),)
PR_SET_PDEATHSIG = 1
# ffmpeg gets nothing of the worker's environment (JWT_SECRET, MYSQL_PASSWORD, MONGO_URI, ...).
CHILD_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_version(exe: str | None = None) -> tuple[int, int] | None:
    """(major, minor) of the ffmpeg binary, or None when its banner cannot be read."""
    done = subprocess.run(
        [exe or ffmpeg_exe(), "-hide_banner", "-version"],
        env=CHILD_ENV,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    found = re.match(rb"ffmpeg version n?(\d+)\.(\d+)", done.stdout)
    return (int(found.group(1)), int(found.group(2))) if found else None


def check_ffmpeg_version(exe: str | None = None) -> str | None:
    """None when the bundled ffmpeg is one this code was tested with, else a one-line refusal."""
    version = ffmpeg_version(exe)
    if version in TESTED_FFMPEG:
        return None
    tested = ", ".join(f"{a}.{b}" for a, b in TESTED_FFMPEG)
    found = "an unreadable version" if version is None else f"{version[0]}.{version[1]}"
    return (
        f"ffmpeg {found} is not a version vid2mp3 was tested with ({tested}); "
        "install the imageio-ffmpeg release pinned in pyproject.toml"
    )


@dataclass(frozen=True)
class ChildLimits:
    """rlimits set in the child before exec."""

    cpu_seconds: int
    file_bytes: int
    memory_bytes: int
    open_files: int = 64


class TimedOut(Exception):
    """The child outlived its wall-clock deadline."""


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _preexec(limits: ChildLimits) -> Callable[[], None]:
    # Loaded before the fork: the child (of a threaded parent) must not dlopen or allocate.
    libc = _libc() if sys.platform.startswith("linux") else None

    def setup() -> None:
        if libc is not None:  # Linux kills ffmpeg if its parent dies, even by SIGKILL
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return setup


@dataclass
class Outcome:
    code: int
    stderr: str


def run(
    args: list[str],
    limits: ChildLimits,
    timeout: float,
    on_stdout_line: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    stderr_limit: int = 1 << 20,
    keep_stderr_head: bool = True,
    cwd: str | None = None,
    on_stderr_line: Callable[[str], None] | None = None,
) -> Outcome:
    """Run ffmpeg once; return its exit code and bounded stderr. The child never outlives this
    call: it is killed on the deadline (TimedOut), on should_stop() (Stopped) and on any error,
    including one raised by a callback. `on_stderr_line` gets each stderr line as printed
    (indentation kept), while it runs."""
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        [ffmpeg_exe(), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=CHILD_ENV,
        cwd=cwd,
        preexec_fn=_preexec(limits),
        close_fds=True,
    )
    stderr = bytearray()
    pending = pending_err = b""
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, "out")
            sel.register(proc.stderr, selectors.EVENT_READ, "err")
            while sel.get_map():
                if should_stop is not None and should_stop():
                    raise Stopped()
                wait = deadline - time.monotonic()
                if wait <= 0:
                    raise TimedOut()
                for key, _ in sel.select(min(wait, 0.5)):
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fileobj)
                    elif key.data == "err":
                        _keep(stderr, data, stderr_limit, keep_stderr_head)
                        if on_stderr_line is not None:
                            pending_err += data
                            *lines, pending_err = pending_err.split(b"\n")
                            for line in lines:
                                on_stderr_line(line.decode("utf-8", "replace").rstrip("\r"))
                            pending_err = pending_err[-65536:]  # a line is never that long
                    else:
                        pending += data
                        *lines, pending = pending.split(b"\n")
                        if on_stdout_line is not None:
                            for line in lines:
                                on_stdout_line(line.decode("utf-8", "replace").strip())
        if on_stderr_line is not None and pending_err:
            on_stderr_line(pending_err.decode("utf-8", "replace").rstrip("\r"))
        try:
            code = proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise TimedOut() from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return Outcome(code, stderr.decode("utf-8", "replace"))


def _keep(buffer: bytearray, data: bytes, limit: int, head: bool) -> None:
    """Bounded stderr: the first `limit` bytes, or the last ones cut at a line start."""
    if head:
        buffer += data[: max(0, limit - len(buffer))]
        return
    buffer += data
    if len(buffer) > limit:
        del buffer[:-limit]
        del buffer[: buffer.find(b"\n") + 1]
