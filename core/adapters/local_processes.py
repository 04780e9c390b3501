"""Conversion attempts named by host, pid and process start time (Linux /proc).

A SIGKILLed pool process leaves its lease behind; Celery hands the task back to the same
worker, on the same host. There the pid can be checked: gone, or reused by a process that
started at another time, means the attempt is dead and its job can be taken over at once
instead of after LEASE_SECONDS. On another host (another pod) nothing can be told, and the
lease is waited out as before.
"""

from __future__ import annotations

import os
import socket

from core.ports.jobs import AttemptHolders


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or
    None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


def pid_namespace() -> str:
    """The inode of this process's PID namespace: containers that share a hostname (host
    networking) but not their pids have different ones."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "?"


class LocalProcesses(AttemptHolders):
    """Names look like `<host>:<pid namespace>:<pid>:<start time>`."""

    def __init__(self, hostname: str | None = None):
        self.hostname = hostname or socket.gethostname()
        self.namespace = pid_namespace()

    def current(self) -> str:
        pid = os.getpid()
        return f"{self.hostname}:{self.namespace}:{pid}:{start_time(pid) or '?'}"

    def is_gone(self, holder: str) -> bool:
        parts = holder.rsplit(":", 3)
        if (
            len(parts) != 4
            or parts[0] != self.hostname
            or parts[1] != self.namespace
            or self.namespace == "?"
            or not parts[2].isdigit()
        ):
            return False  # another machine or container, or a name we cannot read
        _, _, pid, started = parts
        now = start_time(int(pid))
        return now is None or (started != "?" and now != started)
