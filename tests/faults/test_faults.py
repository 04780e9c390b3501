"""Faults injected into a running stack; each test states what a user sees afterwards."""

from __future__ import annotations

import os
import signal
import socket
import uuid

import pytest
import requests

from core.domain.errors import MediaError
from tests.support.faults import api_up, mp3_files_of, supervised
from tests.support.jobs import converting_ffmpeg, job_of, no_ffmpeg_left, start_job, wait_job
from tests.support.stack import workers_answer
from tests.support.wait import scaled, wait_for

pytestmark = pytest.mark.faults


def assert_delivered_once(stack, services, user, job_id):
    """Done, exactly one MP3 stored, exactly one email, and the MP3 downloads."""
    _, _, smtp = services
    job = wait_job(user, job_id)
    assert job["status"] == "done", job
    wait_for(lambda: smtp.mails_about(job_id), timeout=30, what="the email")
    assert len(mp3_files_of(stack, job_id)) == 1
    assert len(smtp.mails_about(job_id)) == 1
    assert user.get(f"/jobs/{job_id}/mp3").status_code == 200
    return job


def replace_convert_worker(stack):
    stack.start("worker-convert")
    wait_for(
        lambda: workers_answer(stack.container, ("convert",)),
        timeout=60,
        what="the new convert worker",
    )


def test_kill_9_of_the_converting_process(stack, services, user, long_input):
    job_id = start_job(user, long_input)
    ffmpeg = converting_ffmpeg(job_id)
    pool_child = ffmpeg.parent()
    os.kill(pool_child.pid, signal.SIGKILL)  # the process running the task, mid-conversion
    job = assert_delivered_once(stack, services, user, job_id)
    assert job["attempts"] >= 2
    wait_for(lambda: no_ffmpeg_left(job_id), timeout=10, what="the orphaned ffmpeg to die")


def test_two_workers_and_an_eager_sweeper_convert_a_silent_job_once(
    stack, services, user, silent_duration_input
):
    """The sweeper bug: a conversion reporting no percentage for longer than the sweep threshold
    (4 s here, swept every second) was converted again by a second worker. With the lease it
    runs once: one claim, one MP3, one email."""
    stack.start("worker-convert-2", [*stack.commands["worker-convert"], "-n", "convert2@%h"])
    try:
        wait_for(
            lambda: any(
                "convert2@" in name
                for reply in stack.container.celery.control.ping(timeout=1.0)
                for name in reply
            ),
            timeout=60,
            what="the second convert worker",
        )
        job_id = start_job(user, silent_duration_input)
        converting_ffmpeg(job_id)
        job = assert_delivered_once(stack, services, user, job_id)
        started = job["started_at"]
        assert job["attempts"] == 1, job
        assert job_of(user, job_id)["started_at"] == started
    finally:
        stack.stop("worker-convert-2")


def test_kill_9_of_the_whole_worker(stack, services, user, long_input):
    job_id = start_job(user, long_input)
    converting_ffmpeg(job_id)
    stack.stop("worker-convert", signal.SIGKILL)  # worker, pool and ffmpeg, all at once
    wait_for(lambda: no_ffmpeg_left(job_id), timeout=10, what="ffmpeg to die with its parent")
    replace_convert_worker(stack)  # as `make up` or Kubernetes would
    assert_delivered_once(stack, services, user, job_id)


def test_sigterm_during_a_job_finishes_it(stack, services, user, long_input):
    job_id = start_job(user, long_input)
    converting_ffmpeg(job_id)
    worker = stack.processes["worker-convert"]
    worker.send_signal(signal.SIGTERM)  # a Kubernetes scale-down: warm shutdown
    assert worker.wait(timeout=scaled(120)) == 0
    job = job_of(user, job_id)
    assert job["status"] == "done", job  # it finished before the worker left
    replace_convert_worker(stack)
    assert_delivered_once(stack, services, user, job_id)


def test_broker_restarted_empty_loses_no_job(stack, services, user, clip):
    redis, _, _ = services
    stack.stop("worker-convert")
    queued = [start_job(user, clip) for _ in range(3)]
    with supervised(stack):  # a worker the broker's loss crashes is restarted
        redis.stop()
        redis.start()  # no persistence: the queue is gone, the jobs are still in MySQL
        replace_convert_worker(stack)
        for job_id in queued:
            assert_delivered_once(stack, services, user, job_id)
        wait_for(lambda: workers_answer(stack.container), timeout=60, what="every worker to answer")


def test_smtp_down_then_back_delivers_once(stack, services, user, clip):
    _, _, smtp = services
    smtp.stop()
    with socket.create_server(("127.0.0.1", smtp.port)) as broken_smtp:
        broken_smtp.settimeout(30)  # the deadline for the notify worker's first attempt
        job_id = start_job(user, clip)
        wait_job(user, job_id)
        attempt, _ = broken_smtp.accept()
        attempt.close()  # hang up before the greeting: that delivery fails, to be retried
    job = job_of(user, job_id)
    assert job["notified_at"] is None and job["notify_error"] is None  # not given up
    smtp.start()
    assert_delivered_once(stack, services, user, job_id)
    assert job_of(user, job_id)["notify_error"] is None


def test_smtp_down_past_the_retry_cap(stack, services, user, clip):
    _, _, smtp = services
    smtp.stop()
    try:
        job_id = start_job(user, clip)
        job = wait_for(
            lambda: (j := job_of(user, job_id))["notify_error"] and j,
            timeout=60,
            what="the notification to be given up",
        )
        assert job["status"] == "done" and job["notified_at"] is None
        # What went wrong, in words for the user; the SMTP host and port stay in the log.
        assert job["notify_error"] == "the email could not be delivered"
        assert str(smtp.port) not in job["notify_error"]
        assert user.get(f"/jobs/{job_id}/mp3").status_code == 200
    finally:
        smtp.start()
    assert not smtp.mails_about(job_id)


def test_mysql_down_503_then_recovers(stack, services, user):
    _, mysql, _ = services
    mysql.down()
    try:
        jobs = user.get("/jobs")
        assert jobs.status_code == 503 and jobs.json()["code"] == "unavailable"
        login = requests.post(
            stack.url("/login"), auth=("faulty@example.com", "password-1"), timeout=10
        )
        assert login.status_code == 503
        assert requests.get(stack.url("/healthz"), timeout=5).status_code == 200
        ready = requests.get(stack.url("/readyz"), timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["mysql"] != "ok"
    finally:
        mysql.up()
    wait_for(lambda: user.get("/jobs").status_code == 200, timeout=30, what="recovery")
    assert requests.get(stack.url("/readyz"), timeout=10).status_code == 200


def test_poison_input_fails_once(stack, user, media_dir):
    from tests.support import media

    job_id = start_job(user, media.make_truncated_mp4(media_dir))
    job = wait_job(user, job_id)
    assert job["status"] == "failed" and job["error"] == MediaError.NOT_MEDIA, job
    probe = swept_probe(stack, older=job_id)
    assert probe.status.value == "failed" and "missing" in (probe.error or "")
    again = job_of(user, job_id)
    assert again["status"] == "failed" and again["attempts"] == 1


def swept_probe(stack, older: str):
    """Age `older` by an hour, then add a queued job (its video missing) aged a little less,
    and wait until the sweeper has re-enqueued it and a worker has failed it: a whole sweep
    and convert cycle has passed with `older` far beyond the sweeper's threshold."""
    from core.domain.jobs import Job, JobStatus

    jobs = stack.container.job_repo
    probe = jobs.add(
        Job(
            id=uuid.uuid4().hex,
            owner_id=jobs.get(older).owner_id,
            status=JobStatus.QUEUED,
            video_fid=uuid.uuid4().hex,
            video_filename="probe.mp4",
            video_size=1,
        )
    )
    try:
        with stack.container.db.cursor() as cur:
            for job_id, age in ((older, 3600), (probe.id, 3000)):
                cur.execute(
                    "UPDATE jobs SET updated_at = UTC_TIMESTAMP(6) - INTERVAL %s SECOND"
                    " WHERE id = %s",
                    (age, job_id),
                )
        return wait_for(
            lambda: (j := jobs.get(probe.id)).status is JobStatus.FAILED and j,
            timeout=30,
            interval=0.1,
            what="the sweeper to requeue the probe job",
        )
    finally:
        jobs.delete(probe.id)


def test_the_api_outlives_mysql_and_redis_going_away_together(stack, services, user, clip):
    """Both cut at once: the same API process keeps answering (alive, not ready, naming both),
    and once they are back an upload converts and downloads, with no restart of the API."""
    redis, mysql, _ = services
    api = stack.running["api"]
    with supervised(stack):  # a worker the broker's loss crashes is restarted, as in production
        mysql.down()
        redis.stop()
        try:
            assert api_up(stack)
            ready = requests.get(stack.url("/readyz"), timeout=10)
            assert ready.status_code == 503, ready.text
            checks = ready.json()["checks"]
            assert checks["mysql"] != "ok" and checks["redis"] != "ok", checks
            assert user.get("/jobs").status_code == 503
        finally:
            redis.start()
            mysql.up()
        wait_for(
            lambda: requests.get(stack.url("/readyz"), timeout=10).status_code == 200,
            timeout=60,
            what="the API to be ready again",
        )
        wait_for(lambda: workers_answer(stack.container), timeout=60, what="every worker")
        job_id = start_job(user, clip)
        assert wait_job(user, job_id)["status"] == "done"
        assert user.get(f"/jobs/{job_id}/mp3").status_code == 200
    assert stack.running["api"] is api and api.poll() is None
