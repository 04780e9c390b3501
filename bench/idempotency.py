"""Cost of an idempotent retry: the first upload vs a retry with the same Idempotency-Key,
through gunicorn on a real stack (directory store). `.venv/bin/python bench/idempotency.py`"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())
from tests.support import media  # noqa: E402
from tests.support.client import login  # noqa: E402
from tests.support.stack import running_stack  # noqa: E402

tmp = Path(tempfile.mkdtemp())
clip = media.make_video(tmp, seconds=120.0, size="640x360")
size = os.path.getsize(clip)
with running_stack(tmp / "stack") as stack:
    s = stack.settings
    admin = login(stack, s.admin_email, s.admin_password)
    admin.post(
        "/users", json={"name": "bench", "email": "bench@example.com", "password": "password-1"}
    )
    user = login(stack, "bench@example.com", "password-1")
    firsts, retries = [], []
    for i in range(5):
        key = f"bench-{i}"
        for bucket in (firsts, retries):
            with open(clip, "rb") as fh:
                t = time.monotonic()
                r = user.post(
                    "/upload", files={"file": ("clip.mp4", fh)}, headers={"Idempotency-Key": key}
                )
                bucket.append(time.monotonic() - t)
            assert r.status_code == 202, r.text
        user.post(f"/jobs/{r.json()['job_id']}/cancel")
    print(
        f"file {size / 2**20:.1f} MiB; first upload median "
        f"{statistics.median(firsts) * 1000:.0f} ms, retry median "
        f"{statistics.median(retries) * 1000:.0f} ms (5 each)"
    )
