"""The Celery tasks called directly on fakes: what each does with the service's outcome."""

from __future__ import annotations

import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded

import tasks
from core.domain.errors import MediaError, Unavailable
from core.domain.jobs import JobStatus
from core.ports.mail import MailError
from core.services.conversion import Outcome
from tasks.convert import video_to_mp3 as convert_proxy
from tasks.notify import job_done as notify_proxy
from tasks.sweep import stale_jobs as sweep_proxy
from tests.support.pipeline import MP4, Pipeline, submit

video_to_mp3 = convert_proxy._get_current_object()
job_done = notify_proxy._get_current_object()
stale_jobs = sweep_proxy._get_current_object()


@pytest.fixture
def pipeline(tmp_path):
    """The unit tier's container, with two SMTP retries 0.1 s apart."""
    return Pipeline(tmp_path, NOTIFY_MAX_RETRIES=2, NOTIFY_RETRY_BASE_SECONDS=0.1)


@pytest.fixture
def services(pipeline):
    """The tasks run on the pipeline's container, as a worker's run on the one it built."""
    previous = tasks.use_container(pipeline.container)
    yield pipeline.container
    tasks.use_container(previous)


def run(task, *args, retries=0):
    task.push_request(retries=retries, called_directly=False, id="t-1")
    try:
        return task.run(*args)
    finally:
        task.pop_request()


@pytest.fixture
def no_sends(monkeypatch):
    """Retries are recorded, not sent to a broker."""
    sent = []

    def fake_retry(*args, countdown=None, exc=None, **kwargs):
        sent.append((countdown, exc))
        raise Retry(exc=exc, when=countdown)

    for task in (video_to_mp3, job_done):
        monkeypatch.setattr(task, "retry", fake_retry)
    return sent


def test_convert_returns_the_outcome(services, pipeline, alice):
    job = submit(pipeline, alice)
    assert run(video_to_mp3, job.id) == "done"
    assert run(video_to_mp3, job.id) == "gone"


def test_convert_retries_after_the_lease_when_another_attempt_holds_the_job(
    services, pipeline, alice, no_sends
):
    job = submit(pipeline, alice)
    pipeline.jobs.claim(
        job.id,
        "f" * 32,
        pipeline.jobs.rows[job.id].created_at.replace(year=2999),
        pipeline.jobs.rows[job.id].created_at,
    )
    with pytest.raises(Retry):
        run(video_to_mp3, job.id)
    assert no_sends == [(4, None)]  # the lease (3 s) and one more


def test_convert_gives_up_retrying_a_held_job_after_max_retries(
    services, pipeline, alice, no_sends
):
    job = submit(pipeline, alice)
    pipeline.jobs.claim(
        job.id,
        "f" * 32,
        pipeline.jobs.rows[job.id].created_at.replace(year=2999),
        pipeline.jobs.rows[job.id].created_at,
    )
    assert run(video_to_mp3, job.id, retries=video_to_mp3.max_retries) == Outcome.LEASED.value
    assert no_sends == []


def test_convert_retries_an_outage_with_backoff(services, pipeline, alice, no_sends, monkeypatch):
    job = submit(pipeline, alice)

    def down(job_id):
        raise Unavailable("mysql")

    monkeypatch.setattr(pipeline.conversion, "convert", down)
    with pytest.raises(Retry):
        run(video_to_mp3, job.id, retries=2)
    [(countdown, exc)] = no_sends
    assert countdown == 8.0 and isinstance(exc, Unavailable)


def test_convert_soft_time_limit_fails_the_job_with_a_clear_reason(
    services, pipeline, alice, monkeypatch
):
    job = submit(pipeline, alice)

    def too_slow(job_id):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(pipeline.conversion, "convert", too_slow)
    assert run(video_to_mp3, job.id) == "failed"
    failed = pipeline.jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and failed.error == MediaError.TOO_SLOW


def test_notify_retries_mail_errors_then_gives_up_without_internals(
    services, pipeline, alice, monkeypatch, no_sends
):
    job = submit(pipeline, alice, MP4)
    pipeline.conversion.convert(job.id)
    holder = pipeline.queue.holders[-1]
    pipeline.mailer.failures = 10
    with pytest.raises(Retry):
        run(job_done, job.id, holder, retries=0)
    assert pipeline.jobs.get(job.id).notify_error is None
    assert run(job_done, job.id, holder, retries=2) is False  # NOTIFY_MAX_RETRIES reached
    error = pipeline.jobs.get(job.id).notify_error
    assert error == "the email could not be delivered" and "SMTP" not in error


def test_notify_sends_once(services, pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    holder = pipeline.queue.holders[-1]
    assert run(job_done, job.id, holder) is True and run(job_done, job.id, holder) is False
    assert run(job_done, job.id) is False  # a message without the claim sends nothing
    assert len(pipeline.mailer.sent) == 1


def test_sweep_counts_what_it_requeued(services, pipeline, alice):
    from datetime import timedelta

    job = submit(pipeline, alice)
    pipeline.jobs.rows[job.id].updated_at -= timedelta(hours=1)
    assert run(stale_jobs) == 1 and run(stale_jobs) == 0


def test_mail_error_is_the_retryable_kind():
    assert issubclass(MailError, Exception)
