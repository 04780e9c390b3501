"""The harness cleans up after itself on every path: a normal end, Ctrl-C, SIGTERM, and
(the next run) SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from devtools.processes import ROOT
from tests.support.netns import ip, remove_leftovers
from tests.support.wait import wait_for

pytestmark = pytest.mark.faults_net

BUILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tests.support.netns import Network
    network = Network(Path(sys.argv[1]))
    host = network.add_host("x")
    host.start("x-sleep", ["sleep", "600"])
    print(network.run_name, host.processes.running["x-sleep"].pid, flush=True)
    time.sleep(600)
    """
)


def leftovers_of(run_name: str) -> list[str]:
    names = [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line]
    links = ip("-o", "link", "show").stdout
    return [n for n in names if n.startswith(run_name)] + ([run_name] if run_name in links else [])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_leaves_no_namespace_link_or_process(tmp_path, sig):
    builder = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        run_name, pid = builder.stdout.readline().split()
        assert leftovers_of(run_name), "the network was not built"
        assert alive(int(pid))
        builder.send_signal(sig)
        builder.wait(timeout=30)
        if sig == signal.SIGKILL:  # nothing could run: the next run removes it
            assert leftovers_of(run_name)
            assert run_name + "x" in remove_leftovers()
        # the kernel frees a deleted namespace's interfaces asynchronously
        wait_for(lambda: leftovers_of(run_name) == [], timeout=10, what="no leftovers")
        wait_for(lambda: not alive(int(pid)), timeout=10, what="the host's process to end")
    finally:
        if builder.poll() is None:
            builder.kill()
            builder.wait()
