"""core.malloc: buffers of an upload's size are reused, not faulted in page by page."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A thread copying 1 MiB pieces as gunicorn and the multipart parser do; prints its own minor
# page faults. argv[1] == "tuned" applies core.malloc first.
CHURN = """
import io, resource, sys, threading
if sys.argv[1] == "tuned":
    from core.malloc import keep_large_buffers
    assert keep_large_buffers()
faults = []
def churn():
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    piece = bytes(1 << 20)
    for _ in range(40):
        held = io.BytesIO()
        for _ in range(4):
            held.write(bytearray(piece))
        data = held.getvalue()
        rest = data[256 << 10:]
        del data, rest, held
    faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
thread = threading.Thread(target=churn)
thread.start()
thread.join()
print(faults[0])
"""


def faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True, timeout=60
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_thread_copying_mib_buffers_stops_faulting_in_new_pages():
    default, tuned = faults("default"), faults("tuned")
    # 40 rounds of about 2.75 MiB of fresh buffers: ~28,000 pages with glibc's defaults
    assert default > 10_000
    assert tuned < default / 10, (default, tuned)
