"""A job of a running stack, as a user and the machine see it: upload over HTTP, wait for a
status, and the ffmpeg process converting it."""

from __future__ import annotations

import os

import psutil

from tests.support.wait import wait_for


def upload(client, path: str, **form):
    """POST the file at path to /upload with form fields; the response, whatever its status."""
    with open(path, "rb") as fh:
        return client.post(
            "/upload", files={"file": (os.path.basename(path), fh)}, data=form, timeout=60
        )


def start_job(client, path: str, **form) -> str:
    """Upload the file and return its job id; the upload must be accepted (202)."""
    response = upload(client, path, **form)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def job_of(client, job_id: str) -> dict:
    return client.get(f"/jobs/{job_id}").json()


def wait_job(client, job_id: str, statuses=("done", "failed"), timeout: float = 90) -> dict:
    """The job once its status is one of statuses (finished, unless named)."""

    def reached():
        job = job_of(client, job_id)
        return job if job["status"] in statuses else None

    return wait_for(
        reached, timeout=timeout, interval=0.1, what=f"job {job_id} to reach {statuses}"
    )


def ffmpeg_of(job_id: str) -> psutil.Process | None:
    """The ffmpeg process encoding this job's MP3, if one runs now."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if (
            "ffmpeg" in (proc.info["name"] or "")
            and f"job-{job_id}-" in cmdline
            and "libmp3lame" in cmdline
        ):
            return proc
    return None


def converting_ffmpeg(job_id: str) -> psutil.Process:
    """The ffmpeg process working on this job, once it has started."""
    return wait_for(
        lambda: ffmpeg_of(job_id), timeout=60, interval=0.02, what=f"ffmpeg converting {job_id}"
    )


def no_ffmpeg_left(job_id: str) -> bool:
    """No process at all (ffmpeg or a probe) names this job's scratch files."""
    return not any(
        f"job-{job_id}-" in " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["cmdline"])
    )
