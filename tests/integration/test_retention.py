"""The retention purge on MySQL and the directory store: a purge killed halfway (SIGKILL) is
finished by the next run, with no orphan file and no job pointing at a missing one."""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from datetime import timedelta

from core.bootstrap import Container
from core.domain.accounts import NewUser
from core.domain.files import MP3S, VIDEOS
from core.domain.jobs import Job, JobStatus
from core.domain.values import utcnow
from tests.support.wait import scaled


def stored(container, bucket, data=b"ID3 audio"):
    with container.blob_store.writer(bucket, "x", "application/octet-stream") as writer:
        writer.write(data)
    return writer.fid


def ended_job(container, owner_id, **changes):
    """A job with a stored video, then moved on by changes (status, files, times)."""
    job = container.job_repo.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=owner_id,
            status=JobStatus.QUEUED,
            video_fid=stored(container, VIDEOS),
            video_filename="clip.mp4",
            video_size=9,
        )
    )
    container.job_repo.update(job.id, changes)
    return job.id


def expired_job(container, owner_id):
    return ended_job(
        container,
        owner_id,
        status=JobStatus.DONE,
        mp3_fid=stored(container, MP3S),
        mp3_size=9,
        finished_at=utcnow(),
        expires_at=utcnow() - timedelta(seconds=1),
    )


def failed_long_ago(container, owner_id):
    """A failed job whose video is past the grace the purge gives sources: what a long run of
    the suite leaves in its database, for the purge to handle beside the test's own jobs."""
    ended = utcnow() - timedelta(minutes=10)
    return ended_job(container, owner_id, status=JobStatus.FAILED, finished_at=ended)


def _purge_and_die_on_third_delete(settings, ours):
    """Purge, and die (SIGKILL) as the third of our files is being deleted, whichever jobs
    of others the purge meets first."""
    container = Container(settings)
    real, calls = container.blob_store.delete, []

    def delete(bucket, fid):
        if fid in ours:
            calls.append(fid)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(bucket, fid)

    container.blob_store.delete = delete
    container.retention.purge()


def test_a_purge_killed_halfway_is_finished_by_the_next(container, settings):
    suffix = uuid.uuid4().hex[:8]
    owner = container.user_repo.add(
        NewUser(name=f"ret-{suffix}", email=f"ret-{suffix}@x.org", password_hash="$argon2id$fake")
    )
    others = [failed_long_ago(container, owner.id) for _ in range(10)]
    ids = [expired_job(container, owner.id) for _ in range(3)]
    files = {j: container.job_repo.get(j) for j in ids}
    ours = {fid for job in files.values() for fid in (job.mp3_fid, job.video_fid)}
    child = multiprocessing.get_context("fork").Process(
        target=_purge_and_die_on_third_delete, args=(settings, ours)
    )
    child.start()
    child.join(scaled(60))
    assert child.exitcode == -signal.SIGKILL
    halfway = [container.job_repo.get(j) for j in ids]
    assert any(j.status is JobStatus.EXPIRED for j in halfway)

    container.retention.purge()
    assert container.retention.purge() == []  # a third run finds nothing left
    for job_id in ids:
        job = container.job_repo.get(job_id)
        assert job.status is JobStatus.EXPIRED and job.mp3_fid is None and job.video_fid is None
        before = files[job_id]
        assert container.blob_store.stat(MP3S, before.mp3_fid) is None
        assert container.blob_store.stat(VIDEOS, before.video_fid) is None
    assert all(container.job_repo.get(j).video_fid is None for j in others)
    assert container.quota_holds.usage(owner.id) == (0, 0)


def test_status_filter_and_expires_at_in_mysql(container):
    suffix = uuid.uuid4().hex[:8]
    owner = container.user_repo.add(
        NewUser(name=f"flt-{suffix}", email=f"flt-{suffix}@x.org", password_hash="$argon2id$fake")
    )
    done = expired_job(container, owner.id)
    queued = container.job_repo.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=owner.id,
            status=JobStatus.QUEUED,
            video_fid="f" * 32,
            video_filename="a.mp4",
            video_size=1,
        )
    ).id
    assert container.job_repo.update(queued, {"status": JobStatus.CANCELLED})
    jobs, total = container.job_repo.list_for_owner(owner.id, 0, 10, status=JobStatus.CANCELLED)
    assert [j.id for j in jobs] == [queued] and total == 1
    assert container.job_repo.get(done).expires_at is not None
