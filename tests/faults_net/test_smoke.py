"""The network itself: every host answers, a job converts across hosts, nothing is left."""

from __future__ import annotations

import pytest

from tests.support import media
from tests.support.wait import wait_for

pytestmark = pytest.mark.faults_net


def test_a_job_crosses_the_hosts(net, user, tmp_path):
    clip = media.make_video(tmp_path, seconds=2.0)
    with open(clip, "rb") as fh:
        created = user.post("/upload", files={"file": ("clip.mp4", fh)}, timeout=60)
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    job = wait_for(
        lambda: (j := user.get(f"/jobs/{job_id}").json())["status"] in ("done", "failed") and j,
        timeout=90, what="the job to end",
    )  # fmt: skip
    assert job["status"] == "done", job
    wait_for(lambda: net.mails_about(job_id), timeout=30, what="the email")
