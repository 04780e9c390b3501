"""Import by URL through the running service: the API, the fetch worker on its own queue, the
convert worker; and a fetch worker killed mid-download."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import media
from tests.support.media_server import MediaServer
from tests.support.wait import wait_for


def _job(client, job_id):
    return client.get(f"/jobs/{job_id}").json()


def _until(client, job_id, statuses, timeout=90):
    return wait_for(
        lambda: (job := _job(client, job_id))["status"] in statuses and job,
        timeout=timeout,
        what=f"job {job_id} to be {'/'.join(statuses)}",
    )


def test_a_video_at_a_url_becomes_an_mp3(stack, admin, clip, tmp_path):
    with MediaServer(clip) as server:
        started = time.monotonic()
        answer = admin.post(
            "/jobs", json={"url": server.url("/video.mp4"), "bitrate": "128k", "tag": "e2e-import"}
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        job = _until(admin, job_id, ("done", "failed"))
        took = time.monotonic() - started
    assert job["status"] == "done", job
    assert job["tag"] == "e2e-import" and job["video_size"] == os.path.getsize(clip)
    assert server.requests == ["/video.mp4"]
    mp3 = tmp_path / "out.mp3"
    mp3.write_bytes(admin.get(f"/jobs/{job_id}/mp3").content)
    assert abs(media.mp3_duration(mp3) - 3.0) < 0.3
    listed = admin.get("/jobs", params={"tag": "e2e-import"}).json()["items"]
    assert [item["id"] for item in listed] == [job_id]
    print(f"\nimport of a {os.path.getsize(clip)} B clip to done: {took:.2f} s")


def _pool_pid(holder: str | None) -> int | None:
    """The pid in a lease holder's name (`host:namespace:pid:start`)."""
    parts = (holder or "").split(":")
    return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


@pytest.mark.stores("directory")
def test_a_fetch_worker_killed_mid_download_is_fetched_again_once(stack, admin, clip):
    with MediaServer(clip, rate=max(1, os.path.getsize(clip) // 5)) as server:
        job_id = admin.post("/jobs", json={"url": server.url("/slow.mp4")}).json()["job_id"]
        wait_for(
            lambda: (
                (job := _job(admin, job_id))["status"] == "fetching"
                and (job.get("fetched_bytes") or 0) > 0
            ),
            timeout=60,
            what="the download to start",
        )
        record = stack.container.job_repo.get(job_id)
        assert record.fetched_bytes < os.path.getsize(clip)  # mid-body
        pid = _pool_pid(record.lease_holder)
        assert pid is not None, record.lease_holder
        os.kill(pid, signal.SIGKILL)  # the pool process downloading it, mid-body
        job = _until(admin, job_id, ("done", "failed"), timeout=180)
        assert job["status"] == "done", job
        assert job["attempts"] >= 2 and job["video_size"] == os.path.getsize(clip)
        assert server.requests.count("/slow.mp4") == 2  # fetched again, once
    videos = os.path.join(stack.env["DATA_DIR"], "blobs", "videos")
    mine = [
        name
        for name in os.listdir(videos)
        if name.endswith(".json")
        and json.load(open(os.path.join(videos, name))).get("metadata", {}).get("job_id") == job_id
    ]
    assert len(mine) <= 1  # nothing doubled (none left once the source is dropped)
    assert not [n for n in os.listdir(videos) if n.endswith(".part")]


@pytest.mark.stores("directory")
def test_the_cli_converts_a_url_without_uploading_it(stack, clip, tmp_path):
    """`vid2mp3 convert https://…` asks the server to fetch it and saves the MP3."""
    settings = stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("VID2MP3_")}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        VID2MP3_URL=stack.base_url,
        VID2MP3_EMAIL=settings.admin_email,
        VID2MP3_PASSWORD=settings.admin_password,
    )
    out = tmp_path / "out"
    with MediaServer(clip) as server:
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("vid2mp3")),
                "convert",
                server.url("/talks/video.mp4"),
                "-o",
                str(out),
                "--bitrate",
                "128k",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / "video.mp3")]
    assert abs(media.mp3_duration(out / "video.mp3") - 3.0) < 0.3
    assert server.requests == ["/talks/video.mp4"]
