"""glibc malloc settings for the processes that move large bodies (the API, the workers).

An upload passes through buffers of up to 1 MiB: gunicorn reads the socket up to 1 MiB at a
time, and the multipart parser and the store copy what it read. With glibc's defaults a
buffer that size is either mmapped (above the mmap threshold, 128 KiB at first) or, once the
threshold has risen, taken from a thread's arena, whose top is handed back to the kernel
(madvise) as soon as 2 MiB are free there. Either way the next buffer's pages are new to the
process and every 4 KiB page costs a page fault. Measured (2026-12-05, the 2-core VM, 3 x 15
uploads each way of the load benchmark's 13 MiB clip to gunicorn): 45-61 ms of API CPU per
upload with the defaults, 23-29 ms with these settings; a 32 MiB upload made 28,000 page
faults in the API worker, now 4 (`tests/e2e/test_upload_memory.py`).

With them, allocations under MMAP_THRESHOLD come from the arenas, and an arena keeps up to
TRIM_THRESHOLD of free memory at its top for the next request instead of returning it. The
memory kept is what a process's requests used at their peak, never more
(docs/architecture.md, "Memory for large bodies"). Setting them with mallopt() (not
GLIBC_TUNABLES in each image, compose file and manifest) keeps one place for them; the forked
gunicorn and Celery pool processes inherit them.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt() parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 16 * 1024 * 1024  # above a 5 MiB S3 part and gunicorn's 1 MiB reads
TRIM_THRESHOLD = 64 * 1024 * 1024


def keep_large_buffers() -> bool:
    """Apply the settings to this process (and the processes it forks later); False where
    the C library has no mallopt (not glibc) or refuses a value."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
