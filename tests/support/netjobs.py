"""What the network fault tests ask of the service: upload, wait, count what a job produced."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import requests

from tests.support.client import Client
from tests.support.wait import wait_for


def upload(client: Client, path: str, timeout: float = 60, **form: Any) -> requests.Response:
    with open(path, "rb") as fh:
        return client.post(
            "/upload", files={"file": (os.path.basename(path), fh)}, data=form, timeout=timeout
        )


def uploaded(client: Client, path: str, **form: Any) -> str:
    response = upload(client, path, **form)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def wait_status(
    client: Client, job_id: str, statuses: tuple[str, ...] = ("done", "failed"), timeout=120
) -> dict:
    def reached():
        job = client.get(f"/jobs/{job_id}", timeout=10).json()
        return job if job["status"] in statuses else None

    return wait_for(
        reached, timeout=timeout, interval=0.2, what=f"job {job_id} to reach {statuses}"
    )


def mp3_files_of(data_dir: str, job_id: str) -> list[str]:
    """MP3s in the directory store whose metadata names this job."""
    folder = os.path.join(data_dir, "blobs", "mp3s")
    found = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as fh:
                if json.load(fh).get("metadata", {}).get("job_id") == job_id:
                    found.append(name)
    return found


def seconds_until(check: Callable[[], Any], timeout: float, what: str) -> float:
    """How long until check() is truthy (fails after timeout)."""
    started = time.monotonic()
    wait_for(check, timeout=timeout, interval=0.1, what=what)
    return time.monotonic() - started


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


class ServerErrors:
    """Every 5xx a client received; only 503 with Retry-After is allowed (a dependency is
    unreachable: try again)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, str | None]] = []

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code >= 500:
            self.seen.append(
                (
                    response.status_code,
                    response.request.url or "",
                    response.headers.get("Retry-After"),
                )
            )

    def forbidden(self) -> list[tuple[int, str, str | None]]:
        return [s for s in self.seen if s[0] != 503 or not s[2]]


def stays(check: Callable[[], Any], seconds: float, what: str) -> None:
    """check() holds at every poll for `seconds` (a duplicate would show up meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), f"no longer true: {what}"
        time.sleep(0.2)


def webhooks_about(receiver: Any, job_id: str, event: str) -> list[dict]:
    found = []
    for _headers, body in list(receiver.received):
        message = json.loads(body)
        if message.get("type") == event and job_id in json.dumps(message.get("data")):
            found.append(message)
    return found


def assert_once(net: Any, user: Client, receiver: Any, job_id: str, settle: float = 5.0) -> dict:
    """The job is done with exactly one MP3, one email and one `job.succeeded` webhook, and
    still exactly one of each `settle` seconds later."""
    job = wait_status(user, job_id)
    assert job["status"] == "done", job
    wait_for(lambda: net.mails_about(job_id), timeout=60, what=f"the email about {job_id}")
    wait_for(
        lambda: webhooks_about(receiver, job_id, "job.succeeded"),
        timeout=60,
        what=f"the webhook about {job_id}",
    )

    def once() -> bool:
        return (
            len(mp3_files_of(net.env["DATA_DIR"], job_id)) == 1
            and len(net.mails_about(job_id)) == 1
            and len(webhooks_about(receiver, job_id, "job.succeeded")) == 1
        )

    assert once(), (
        mp3_files_of(net.env["DATA_DIR"], job_id),
        len(net.mails_about(job_id)),
        len(webhooks_about(receiver, job_id, "job.succeeded")),
    )
    stays(once, settle, f"one MP3, one email, one webhook for {job_id}")
    assert user.get(f"/jobs/{job_id}/mp3").status_code == 200
    return job


def converting_pid(job_id: str, timeout: float = 60) -> int:
    """The pid of the ffmpeg converting this job (on whichever host), once it runs."""
    import psutil

    def find() -> int | None:
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if (
                "ffmpeg" in (proc.info["name"] or "")
                and f"job-{job_id}-" in cmdline
                and "libmp3lame" in cmdline
            ):
                return int(proc.pid)
        return None

    return int(wait_for(find, timeout=timeout, interval=0.05, what=f"ffmpeg converting {job_id}"))


def ffmpeg_running(job_id: str) -> bool:
    import psutil

    return any(
        f"job-{job_id}-" in " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["cmdline"])
    )
