"""Import by URL against a plain upload of the same file, through gunicorn and the fetch worker
on a real stack (directory store, loopback web server): seconds from the request to the job
being `queued` (its video stored). `.venv/bin/python bench/imports.py [MiB]`"""

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())
from tests.support import media  # noqa: E402
from tests.support.client import login  # noqa: E402
from tests.support.media_server import MediaServer  # noqa: E402
from tests.support.stack import running_stack  # noqa: E402
from tests.support.wait import wait_for  # noqa: E402

MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 100
RUNS = 3
tmp = Path(tempfile.mkdtemp())
clip = media.make_video(tmp, seconds=20.0, size="320x240")
big = tmp / "big.mp4"  # a real MP4 head, padded to size: the pipeline stores it all alike
shutil.copy(clip, big)
with open(big, "ab") as fh:
    fh.write(b"\0" * (MIB * 2**20 - os.path.getsize(clip)))
size = os.path.getsize(big)
env = {"IMPORT_ALLOW_PRIVATE": "true", "MAX_UPLOAD_MB": str(MIB + 10), "QUOTA_STORED_MB": "4096"}
with running_stack(tmp / "stack", env) as stack, MediaServer(big) as server:
    s = stack.settings
    user = login(stack, s.admin_email, s.admin_password)
    uploads, imports = [], []
    for _ in range(RUNS):
        with open(big, "rb") as fh:
            t = time.monotonic()
            r = user.post("/upload", files={"file": ("big.mp4", fh)}, timeout=300)
            uploads.append(time.monotonic() - t)
        assert r.status_code == 202, r.text
        user.post(f"/jobs/{r.json()['job_id']}/cancel")
        user.delete(f"/jobs/{r.json()['job_id']}")
        t = time.monotonic()
        r = user.post("/jobs", json={"url": server.url("/video.mp4")})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job = wait_for(
            lambda job_id=job_id: (
                (j := user.get(f"/jobs/{job_id}").json())["status"] != "fetching" and j
            ),
            timeout=300,
            interval=0.02,
            what="the fetch",
        )
        imports.append(time.monotonic() - t)
        assert job["video_size"] == size, job
        user.post(f"/jobs/{job_id}/cancel")
        user.delete(f"/jobs/{job_id}")
    up, im = statistics.median(uploads), statistics.median(imports)
    print(
        f"file {size / 2**20:.0f} MiB, {RUNS} runs each: upload (POST /upload to 202) median "
        f"{up:.2f} s = {size / 2**20 / up:.0f} MiB/s; import (POST /jobs to queued) median "
        f"{im:.2f} s = {size / 2**20 / im:.0f} MiB/s"
    )
