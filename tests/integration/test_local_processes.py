"""Naming conversion attempts by process, on this machine's real /proc: a dead or replaced
process is recognised, anything uncertain is not."""

from __future__ import annotations

import os
import signal
import subprocess

from core.adapters.local_processes import LocalProcesses, pid_namespace, start_time
from tests.support.wait import scaled


def test_a_live_process_is_not_gone_and_a_killed_one_is():
    here = LocalProcesses("host-a")
    assert not here.is_gone(here.current())
    child = subprocess.Popen(["sleep", "60"])
    try:
        name = f"host-a:{pid_namespace()}:{child.pid}:{start_time(child.pid)}"
        assert not here.is_gone(name)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=scaled(10))
        assert here.is_gone(name)
    finally:
        if child.poll() is None:
            child.kill()


def test_an_unreaped_child_counts_as_gone():
    here = LocalProcesses("host-a")
    child = subprocess.Popen(["sleep", "60"])
    name = f"host-a:{pid_namespace()}:{child.pid}:{start_time(child.pid)}"
    os.kill(child.pid, signal.SIGKILL)
    try:
        # a zombie until reaped: its pid still exists, the attempt does not
        from tests.support.wait import wait_for

        wait_for(lambda: here.is_gone(name), timeout=10, what="the zombie to count as gone")
    finally:
        child.wait(timeout=scaled(10))


def test_a_reused_pid_is_gone_and_what_cannot_be_seen_is_not():
    here = LocalProcesses("host-a")
    me = here.current()
    _, namespace, pid, _ = me.split(":")
    assert here.is_gone(f"host-a:{namespace}:{pid}:1")  # same pid, another start: a new process
    assert not here.is_gone(me.replace("host-a", "host-b", 1))  # another machine
    assert not here.is_gone(f"host-a:1:{pid}:1")  # another container with the same hostname
    assert not here.is_gone("nonsense") and not here.is_gone(f"host-a:{namespace}:x:1")
