"""Event streams against real Redis and MariaDB: budgets, a client that falls behind, and
nothing left behind when streams close."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest

from core.domain.accounts import NewUser, Principal, Role
from core.domain.errors import Busy, NotFound
from core.domain.jobs import Job, JobStatus
from core.services.job_events import JobStreams, StreamLimits
from core.services.job_json import job_json
from tests.support.wait import wait_for


def make_user(container) -> Principal:
    suffix = uuid.uuid4().hex[:8]
    user = container.user_repo.add(
        NewUser(name=f"s-{suffix}", email=f"{suffix}@example.com", password_hash="$argon2id$x")
    )
    return Principal(user_id=user.id, role=Role.USER)


def make_job(container, owner: Principal) -> Job:
    return container.job_repo.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=owner.user_id,
            status=JobStatus.QUEUED,
            video_fid="f" * 32,
            video_filename="clip.mp4",
            video_size=1,
        )
    )


def streams(container, per_process=3, per_user=2, buffer=64, keepalive=15.0) -> JobStreams:
    import json

    return JobStreams(
        container.job_repo,
        container.job_events,
        container.slots,
        StreamLimits(
            per_process=per_process, per_user=per_user, buffer=buffer, keepalive_seconds=keepalive
        ),
        dumps=json.dumps,
    )


def test_budgets_per_user_and_per_process(container):
    hub = streams(container, per_process=3, per_user=2)
    ann, bob, cy = make_user(container), make_user(container), make_user(container)
    a_job, b_job, c_job = (
        make_job(container, ann),
        make_job(container, bob),
        make_job(container, cy),
    )
    opened = [hub.open(ann, a_job.id), hub.open(ann, a_job.id)]
    with pytest.raises(Busy) as per_user:
        hub.open(ann, a_job.id)
    assert per_user.value.retry_after >= 1 and "you have too many" in per_user.value.message
    opened.append(hub.open(bob, b_job.id))
    with pytest.raises(Busy) as per_process:
        hub.open(cy, c_job.id)
    assert "here" in per_process.value.message
    opened[0].close()
    opened.append(hub.open(cy, c_job.id))  # a closed stream gives its room back
    with pytest.raises(Busy):
        hub.open(ann, a_job.id)  # ann has one open and bob, cy theirs: the process is full
    for stream in opened:
        stream.close()
    assert hub.open_streams == 0


def test_another_users_job_takes_no_budget(container):
    hub = streams(container, per_process=1, per_user=1)
    ann, bob = make_user(container), make_user(container)
    job = make_job(container, ann)
    for _ in range(3):
        with pytest.raises(NotFound):
            hub.open(bob, job.id)
    hub.open(bob, make_job(container, bob).id).close()
    assert hub.open_streams == 0 and container.job_events.listeners() == 0


def test_a_stream_that_falls_behind_its_buffer_ends(container):
    hub = streams(container, buffer=3, keepalive=0.2)
    ann = make_user(container)
    job = make_job(container, ann)
    stream = hub.open(ann, job.id)
    frames = iter(stream)
    assert "event: status" in next(frames)
    for percent in range(10):  # published while nobody reads
        container.job_events.publish(
            job.id, {"kind": "progress", "job": {**job_json(job), "progress": float(percent)}}
        )
    wait_for(lambda: stream._sub.overflowed, timeout=5, what="the buffer to overflow")
    assert list(itertools.islice(frames, 3)) == []  # ended: no keepalive, no event
    assert stream.ended_by == "overflow"
    assert hub.open_streams == 0 and container.job_events.listeners() == 0


def test_many_streams_share_one_listener_and_leave_nothing(container):
    hub = streams(container, per_process=60, per_user=60)
    ann = make_user(container)
    job = make_job(container, ann)
    opened = [hub.open(ann, job.id) for _ in range(50)]
    firsts = [next(iter(stream)) for stream in opened]
    assert all("event: status" in frame for frame in firsts)
    listeners = [t for t in threading.enumerate() if t.name == "job-events"]
    assert len(listeners) == 1
    for stream in opened:
        stream.close()
    assert hub.open_streams == 0 and container.job_events.listeners() == 0


def test_the_api_answers_503_with_retry_after_past_the_budget(container, settings):
    from api import create_app
    from core.bootstrap import Container

    small = Container(settings, job_streams=streams(container, per_process=1, per_user=1))
    client = create_app(container=small).test_client()
    ann = make_user(container)
    job = make_job(container, ann)
    token = container.auth.tokens.issue(container.user_repo.get(ann.user_id))
    headers = {"Authorization": f"Bearer {token}"}
    first = client.get(f"/jobs/{job.id}/events", headers=headers)
    assert first.status_code == 200
    second = client.get(f"/jobs/{job.id}/events", headers=headers)
    assert second.status_code == 503 and second.headers["Retry-After"] == "5"
    assert second.get_json()["code"] == "busy"
    first.close()


def test_strangers_get_401_and_other_users_404(client, container):
    ann, bob = make_user(container), make_user(container)
    job = make_job(container, ann)
    bob_token = container.auth.tokens.issue(container.user_repo.get(bob.user_id))
    bob_auth = {"Authorization": f"Bearer {bob_token}"}
    assert client.get(f"/jobs/{job.id}/events").status_code == 401
    assert client.get(f"/jobs/{job.id}/events?ticket=forged").status_code == 401
    assert client.get(f"/jobs/{job.id}/events", headers=bob_auth).status_code == 404
    assert client.post(f"/jobs/{job.id}/events/ticket").status_code == 401
    assert client.post(f"/jobs/{job.id}/events/ticket", headers=bob_auth).status_code == 404
    assert client.get("/jobs/not-a-job/events", headers=bob_auth).status_code == 404


def test_a_stream_outlives_a_mysql_outage_during_a_resync(container):
    """Redis and MySQL both away: the stream keeps its client (keepalives) instead of failing,
    and tells the change it finds once MySQL answers again."""
    from core.domain.errors import Unavailable

    ann = make_user(container)
    job = make_job(container, ann)

    class Flaky:
        down = False

        def get(self, job_id):
            if self.down:
                raise Unavailable("mysql")
            return container.job_repo.get(job_id)

    class CutSubscription:
        """A subscription whose feed is never live: the stream resyncs from the database."""

        live = False

        def __init__(self, sub):
            self.sub = sub
            self.generation = sub.generation

        def get(self, timeout):
            return self.sub.get(timeout)

        @property
        def overflowed(self):
            return self.sub.overflowed

        def close(self):
            self.sub.close()

    class CutFeed:
        def subscribe(self, job_id, buffer):
            return CutSubscription(container.job_events.subscribe(job_id, buffer))

    import json

    repo = Flaky()
    hub = JobStreams(
        repo,
        CutFeed(),
        container.slots,
        StreamLimits(per_process=2, per_user=2, keepalive_seconds=0.3, resync_seconds=0.1),
        dumps=json.dumps,
    )
    stream = hub.open(ann, job.id)
    frames = iter(stream)
    assert "queued" in next(frames)
    repo.down = True
    assert next(frames) == ": keepalive\n\n"  # still open while MySQL is away
    container.job_repo.update(job.id, {"status": JobStatus.CANCELLED})
    repo.down = False
    rest = list(itertools.islice(frames, 10))
    assert any("event: status" in f and '"cancelled"' in f for f in rest), rest
    stream.close()
