"""What programs that call us rely on, over real processes: cancel, expiring links (also in the
email), Idempotency-Key under gunicorn, GET /jobs?status=."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support import media
from tests.support.jobs import ffmpeg_of, upload, wait_job
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def test_cancel_stops_ffmpeg_within_2_s_and_keeps_nothing(stack, new_user, smtp, long_input):
    user, email = new_user()
    job_id = upload(user, long_input).json()["job_id"]
    wait_for(lambda: ffmpeg_of(job_id), timeout=60, interval=0.02, what="ffmpeg to start")
    started = time.monotonic()
    cancelled = user.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    wait_for(lambda: ffmpeg_of(job_id) is None, timeout=2, interval=0.05, what="ffmpeg to stop")
    print(f"ffmpeg stopped {time.monotonic() - started:.2f} s after the cancel")
    wait_for(
        lambda: f"job {job_id}: lost" in stack.log("worker-convert"),
        timeout=10,
        what="the conversion to end",
    )
    job = user.get(f"/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["mp3_fid"] is None
    assert user.get(f"/jobs/{job_id}/mp3").status_code == 404
    assert user.post(f"/jobs/{job_id}/cancel").status_code == 409
    scratch = os.path.join(stack.env["DATA_DIR"], "scratch")
    assert (
        not [name for name in os.listdir(scratch) if job_id in name]
        if os.path.isdir(scratch)
        else True
    )
    inbox, _ = smtp
    assert not [m for m in inbox.received() if m["To"] == email]


def test_a_finished_job_cannot_be_cancelled(stack, new_user, clip):
    user, _ = new_user()
    job = wait_job(user, upload(user, clip).json()["job_id"])
    refused = user.post(f"/jobs/{job['id']}/cancel")
    assert refused.status_code == 409 and refused.json()["code"] == "conflict"


def test_an_expiring_link_downloads_without_a_token(stack, new_user, clip):
    user, _ = new_user()
    job = wait_job(user, upload(user, clip).json()["job_id"])
    made = user.post(f"/jobs/{job['id']}/links", json={"expires_in": 120})
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith(f"{stack.base_url}/links/") and made.json()["expires_at"]
    whole = requests.get(url, timeout=10)
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "audio/mpeg"
    assert whole.content == user.get(f"/jobs/{job['id']}/mp3").content
    assert whole.headers["Content-Disposition"].startswith('attachment; filename="')
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == whole.content[10:20]
    same = requests.get(url, headers={"If-None-Match": whole.headers["ETag"]}, timeout=10)
    assert same.status_code == 304
    tampered = requests.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB"), timeout=10)
    assert tampered.status_code == 404 and tampered.json()["status"] == 404
    assert user.post(f"/jobs/{job['id']}/links", json={"expires_in": 59}).status_code == 422
    assert user.delete(f"/jobs/{job['id']}").status_code == 204
    assert requests.get(url, timeout=10).status_code == 404


def test_links_need_a_finished_job_of_yours(stack, new_user, clip, long_input):
    owner, _ = new_user()
    stranger, _ = new_user()
    running = upload(owner, long_input).json()["job_id"]
    assert owner.post(f"/jobs/{running}/links", json={}).status_code == 409
    owner.post(f"/jobs/{running}/cancel")
    done = wait_job(owner, upload(owner, clip).json()["job_id"])
    assert stranger.post(f"/jobs/{done['id']}/links", json={}).status_code == 404


def test_the_ready_email_link_downloads_the_mp3(stack, new_user, smtp, clip):
    user, email = new_user()
    job = wait_job(user, upload(user, clip).json()["job_id"])
    inbox, _ = smtp
    [mail] = wait_for(
        lambda: [m for m in inbox.received() if m["To"] == email], timeout=30, what="the email"
    )
    body = mail.get_payload(decode=True).decode()
    link = re.search(re.escape(stack.base_url) + r"/links/\S+", body).group(0)
    got = requests.get(link, timeout=10)
    assert got.status_code == 200 and len(got.content) == job["mp3_size"]


def keyed_upload(user, path, key, **form):
    with open(path, "rb") as fh:
        return user.post(
            "/upload",
            files={"file": (os.path.basename(path), fh)},
            data=form,
            headers={"Idempotency-Key": key},
        )


def test_a_retried_upload_makes_one_job(stack, new_user, clip, media_dir):
    user, _ = new_user()
    first = keyed_upload(user, clip, "upload-1")
    assert first.status_code == 202, first.text
    started = time.monotonic()
    again = keyed_upload(user, clip, "upload-1")
    print(f"idempotent retry answered in {time.monotonic() - started:.3f} s")
    assert again.status_code == 202 and again.json()["job_id"] == first.json()["job_id"]
    assert keyed_upload(user, clip, "upload-1", bitrate="320k").status_code == 422
    other = media.make_video(media_dir, seconds=2.0)
    assert keyed_upload(user, other, "upload-1").status_code == 422
    assert user.get("/jobs").json()["total"] == 1
    assert upload(user, clip).json()["job_id"] != first.json()["job_id"]  # no key: a new job


def test_concurrent_uploads_with_one_key_make_one_job(stack, new_user, clip):
    user, _ = new_user()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: keyed_upload(user, clip, "race-1"), range(4)))
    statuses = sorted(a.status_code for a in answers)
    # 429: more than QUOTA_CONCURRENT_UPLOADS of the user's uploads at once
    assert set(statuses) <= {202, 409, 429} and 202 in statuses, [a.text for a in answers]
    assert len({a.json()["job_id"] for a in answers if a.status_code == 202}) == 1
    assert all(a.json()["code"] == "conflict" for a in answers if a.status_code == 409)
    assert all(
        a.json()["errors"]["quota"]["limit"] == "QUOTA_CONCURRENT_UPLOADS"
        for a in answers
        if a.status_code == 429
    )
    assert user.get("/jobs").json()["total"] == 1


def test_jobs_can_be_listed_by_status(stack, new_user, clip):
    user, _ = new_user()
    done = wait_job(user, upload(user, clip).json()["job_id"])
    assert [j["id"] for j in user.get("/jobs", params={"status": "done"}).json()["items"]] == [
        done["id"]
    ]
    assert user.get("/jobs", params={"status": "failed"}).json()["total"] == 0
    assert user.get("/jobs", params={"status": "nonsense"}).status_code == 422
    assert done["expires_at"] and done["expires_at"] > done["finished_at"]
