"""The S3 stack seen from the bucket: what deleting a job, retention and deleting a user leave
there, and the CLI following the presigned redirect to SeaweedFS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import media
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.stores("s3")]

VID2MP3 = str(Path(sys.executable).with_name("vid2mp3"))


def objects(stack) -> tuple[set[str], list[str]]:
    """Every key under the stack's prefix, and the keys of unfinished multipart uploads."""
    s3 = stack.container.blob_store.client()
    where = {"Bucket": stack.settings.s3_bucket, "Prefix": stack.settings.s3_prefix}
    keys = {
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(**where)
        for item in page.get("Contents", [])
    }
    pending = [u["Key"] for u in s3.list_multipart_uploads(**where).get("Uploads", [])]
    return keys, pending


def converted(user, clip) -> dict:
    with open(clip, "rb") as fh:
        accepted = user.post("/upload", files={"file": (os.path.basename(clip), fh)})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    job = wait_for(
        lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
            user.get(f"/jobs/{job_id}").json()
        ),
        timeout=90,
        what=f"job {job_id}",
    )
    assert job["status"] == "done", job
    return job


def keys_of(stack, job_id: str) -> set[str]:
    """The objects a done job holds. Without KEEP_SOURCE the worker deletes the video right
    after recording done, then clears video_fid: read the row once it is cleared, not between
    the two steps (where it names a video already gone)."""
    keep_source = stack.settings.keep_source
    job = wait_for(
        lambda: (lambda j: j if keep_source or j.video_fid is None else None)(
            stack.container.job_repo.get(job_id)
        ),
        timeout=30,
        what=f"job {job_id} without its video",
    )
    prefix = stack.settings.s3_prefix
    kept = {f"{prefix}mp3s/{job.mp3_fid}"}
    if job.video_fid:
        kept.add(f"{prefix}videos/{job.video_fid}")
    return kept


def test_deleting_a_job_retention_and_deleting_a_user_remove_the_objects(
    stack, new_user, admin, clip
):
    user, email = new_user()
    first, second, third = (converted(user, clip) for _ in range(3))
    held = {job["id"]: keys_of(stack, job["id"]) for job in (first, second, third)}
    for keys in held.values():
        assert keys <= objects(stack)[0]

    assert user.delete(f"/jobs/{first['id']}").status_code == 204
    assert not held[first["id"]] & objects(stack)[0]

    container = stack.container
    assert container.job_repo.update(second["id"], {"expires_at": datetime(2000, 6, 15, 12)})
    assert second["id"] in container.retention.purge()
    mp3_key = f"{stack.settings.s3_prefix}mp3s/{second['mp3_fid']}"
    assert mp3_key not in objects(stack)[0]
    assert user.get(f"/jobs/{second['id']}/mp3").status_code == 410

    user_id = container.user_repo.get_by_email(email).id
    assert admin.delete(f"/users/{user_id}").status_code == 204
    left, pending = objects(stack)
    assert not set().union(*held.values()) & left
    assert pending == []


def test_the_cli_downloads_by_the_presigned_redirect(stack, new_user, clip, tmp_path):
    user, email = new_user()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VID2MP3_")}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        VID2MP3_URL=stack.base_url,
        VID2MP3_EMAIL=email,
        VID2MP3_PASSWORD="password-1",
    )
    run = subprocess.run(
        [VID2MP3, "convert", str(clip), "-o", str(tmp_path / "out"), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    [result] = json.loads(run.stdout)
    out = Path(result["output"])
    job = user.get(f"/jobs/{result['job_id']}").json()
    assert out.stat().st_size == job["mp3_size"] > 0
    assert media.is_mpeg_audio(out)
    redirect = user.get(f"/jobs/{job['id']}/mp3", allow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith(stack.settings.s3_endpoint_url + "/")
