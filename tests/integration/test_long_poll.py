"""GET /jobs/<id> as a long poll (Prefer: wait=N with If-None-Match), in-process on the real
adapters: the change that ends the wait travels through Redis pub/sub."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from core.domain.accounts import NewUser
from core.domain.jobs import Job, JobStatus


@pytest.fixture
def owner(container):
    suffix = uuid.uuid4().hex[:8]
    return container.user_repo.add(
        NewUser(name=f"lp-{suffix}", email=f"{suffix}@example.com", password_hash="$argon2id$x")
    )


@pytest.fixture
def headers(container, owner):
    return {"Authorization": f"Bearer {container.auth.tokens.issue(owner)}"}


def new_job(container, owner, status=JobStatus.CONVERTING) -> Job:
    return container.job_repo.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=owner.id,
            status=status,
            video_fid="f" * 32,
            video_filename="clip.mp4",
            video_size=1,
        )
    )


def later(seconds, action):
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def etag_of(client, job_id, headers):
    first = client.get(f"/jobs/{job_id}", headers=headers)
    assert first.status_code == 200
    return first.headers["ETag"]


def test_a_change_ends_the_wait_with_the_new_state(client, container, owner, headers):
    job = new_job(container, owner)
    etag = etag_of(client, job.id, headers)
    later(0.5, lambda: container.job_repo.update(job.id, {"progress": 42.0}))
    began = time.monotonic()
    response = client.get(
        f"/jobs/{job.id}", headers={**headers, "If-None-Match": etag, "Prefer": "wait=20"}
    )
    took = time.monotonic() - began
    assert response.status_code == 200 and response.get_json()["progress"] == 42.0
    assert 0.4 < took < 5, took
    assert response.headers["Preference-Applied"] == "wait=20"
    assert response.headers["Retry-After"] == "2"
    assert response.headers["ETag"] != etag


def test_no_change_is_304_after_the_wait(client, container, owner, headers):
    job = new_job(container, owner)
    etag = etag_of(client, job.id, headers)
    began = time.monotonic()
    response = client.get(
        f"/jobs/{job.id}", headers={**headers, "If-None-Match": etag, "Prefer": "wait=1"}
    )
    assert response.status_code == 304 and time.monotonic() - began >= 1.0
    assert response.headers["Preference-Applied"] == "wait=1"
    assert response.headers["Retry-After"] == "2"


@pytest.mark.parametrize("prefer", ["wait=abc", "wait=-5", "wait=", "wait=1e3", "wait=٣", ";;,="])
def test_an_unreadable_wait_is_ignored(client, container, owner, headers, prefer):
    job = new_job(container, owner)
    etag = etag_of(client, job.id, headers)
    began = time.monotonic()
    response = client.get(
        f"/jobs/{job.id}", headers={**headers, "If-None-Match": etag, "Prefer": prefer}
    )
    assert response.status_code == 304 and time.monotonic() - began < 1.0
    assert "Preference-Applied" not in response.headers


def test_a_huge_wait_is_clamped(client, container, owner, headers):
    job = new_job(container, owner)
    etag = etag_of(client, job.id, headers)
    later(0.3, lambda: container.job_repo.update(job.id, {"status": JobStatus.CANCELLED}))
    response = client.get(
        f"/jobs/{job.id}",
        headers={**headers, "If-None-Match": etag, "Prefer": "wait=100000000000000000000"},
    )
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert response.headers["Preference-Applied"] == "wait=60"
    assert "Retry-After" not in response.headers  # it ended: no reason to poll again


def test_an_ended_job_answers_at_once(client, container, owner, headers):
    job = new_job(container, owner, status=JobStatus.FAILED)
    etag = etag_of(client, job.id, headers)
    began = time.monotonic()
    response = client.get(
        f"/jobs/{job.id}", headers={**headers, "If-None-Match": etag, "Prefer": "wait=30"}
    )
    assert response.status_code == 304 and time.monotonic() - began < 1.0
    assert "Retry-After" not in response.headers


def test_another_users_job_is_404_even_when_waiting(client, container, owner, headers):
    other = container.user_repo.add(
        NewUser(
            name=f"o-{uuid.uuid4().hex[:8]}",
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            password_hash="$argon2id$x",
        )
    )
    job = new_job(container, other)
    response = client.get(
        f"/jobs/{job.id}", headers={**headers, "If-None-Match": '"x"', "Prefer": "wait=5"}
    )
    assert response.status_code == 404
