"""Cancel, expiring links, Idempotency-Key and retention on the services, with fakes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from core.domain.errors import Conflict, Gone, InvalidInput, NotFound
from core.domain.files import MP3S, VIDEOS
from core.domain.jobs import JobStatus
from core.domain.options import AudioOptions
from core.domain.values import utcnow
from core.services.conversion import Outcome
from tests.support.pipeline import MP4, Pipeline, submit
from tests.support.wait import scaled, wait_for


def chunks(data=MP4):
    return [data[i : i + 64] for i in range(0, len(data), 64)]


def done_job(pipeline, actor):
    job = submit(pipeline, actor)
    assert pipeline.conversion.convert(job.id) is Outcome.DONE
    return pipeline.jobs.get(job.id)


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_a_queued_job_stops_it_before_it_runs(pipeline, alice):
    job = submit(pipeline, alice)
    cancelled = pipeline.service.cancel(alice, job.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
    assert pipeline.conversion.convert(job.id) is Outcome.GONE
    assert pipeline.blobs.in_bucket(VIDEOS) == [] and pipeline.blobs.in_bucket(MP3S) == []
    assert pipeline.queue.notifies == []


def test_cancel_while_converting_stores_no_mp3(pipeline, alice, tmp_path):
    conversion = pipeline.rewired({"LEASE_SECONDS": 30}).conversion
    pipeline.transcoder.hold = threading.Event()
    job = submit(pipeline, alice)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(conversion.convert(job.id)))
    worker.start()
    wait_for(lambda: pipeline.transcoder.running == 1, timeout=5, what="the encode to start")
    pipeline.service.cancel(alice, job.id)
    worker.join(timeout=scaled(2))  # the lease is checked every 0.5 s although it lasts 30 s
    assert not worker.is_alive() and outcome == [Outcome.LOST]
    assert pipeline.jobs.get(job.id).status is JobStatus.CANCELLED
    assert pipeline.blobs.in_bucket(MP3S) == [] and pipeline.queue.notifies == []
    assert list((tmp_path / "scratch").glob("**/*.mp3")) == []


@pytest.mark.parametrize("status", [JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED])
def test_an_ended_job_cannot_be_cancelled(pipeline, alice, status):
    job = submit(pipeline, alice)
    pipeline.jobs.update(job.id, {"status": status})
    with pytest.raises(Conflict):
        pipeline.service.cancel(alice, job.id)


def test_another_users_job_cannot_be_cancelled(pipeline, alice, bob):
    job = submit(pipeline, alice)
    with pytest.raises(NotFound):
        pipeline.service.cancel(bob, job.id)
    assert pipeline.jobs.get(job.id).status is JobStatus.QUEUED


# --- links ----------------------------------------------------------------------------------


def test_a_link_downloads_until_it_expires(pipeline, alice):
    job = done_job(pipeline, alice)
    url, expires_at = pipeline.service.create_link(alice, job.id, 60)
    assert url.startswith("http://api.test/links/") and expires_at == pipeline.clock.now + 60
    token = url.rsplit("/", 1)[1]
    assert pipeline.service.download_link(token).blob.fid == job.mp3_fid
    pipeline.clock.now += 59
    assert pipeline.service.download_link(token).job.id == job.id
    pipeline.clock.now += 1
    with pytest.raises(Gone):
        pipeline.service.download_link(token)


def test_a_tampered_link_is_unknown(pipeline, alice):
    job = done_job(pipeline, alice)
    token = pipeline.service.create_link(alice, job.id, 600)[0].rsplit("/", 1)[1]
    # A character inside the payload: the last one of a base64 signature may carry only
    # padding bits, so changing it can leave the decoded signature as it was.
    forged_payload = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for forged in (forged_payload, token + "x", "nothing"):
        with pytest.raises(NotFound):
            pipeline.service.download_link(forged)
    other = pipeline.links.sign(job.id, "another-fid", 600)[0].rsplit("/", 1)[1]
    with pytest.raises(NotFound):
        pipeline.service.download_link(other)


def test_links_of_deleted_or_expired_jobs_stop_working(pipeline, alice):
    deleted, expired = done_job(pipeline, alice), done_job(pipeline, alice)
    to_deleted = pipeline.service.create_link(alice, deleted.id, 600)[0].rsplit("/", 1)[1]
    to_expired = pipeline.service.create_link(alice, expired.id, 600)[0].rsplit("/", 1)[1]
    pipeline.service.delete(alice, deleted.id)
    with pytest.raises(NotFound):
        pipeline.service.download_link(to_deleted)
    pipeline.jobs.update(expired.id, {"expires_at": utcnow() - timedelta(seconds=1)})
    pipeline.retention.purge()
    with pytest.raises(Gone):
        pipeline.service.download_link(to_expired)
    with pytest.raises(Gone):
        pipeline.service.create_link(alice, expired.id, 600)


def test_no_link_before_the_mp3_exists_nor_for_others(pipeline, alice, bob):
    job = submit(pipeline, alice)
    with pytest.raises(Conflict):
        pipeline.service.create_link(alice, job.id, 600)
    done = done_job(pipeline, alice)
    with pytest.raises(NotFound):
        pipeline.service.create_link(bob, done.id, 600)


def test_the_ready_email_carries_a_working_link(pipeline, alice):
    job = done_job(pipeline, alice)
    assert pipeline.notifications.notify(job.id, pipeline.queue.holders[-1])
    body = pipeline.mailer.sent[-1].body
    url = next(word for word in body.split() if word.startswith("http://api.test/links/"))
    assert pipeline.service.download_link(url.rsplit("/", 1)[1]).job.id == job.id


# --- Idempotency-Key ------------------------------------------------------------------------


class Body:
    """An upload's body as POST /upload hands it to the intake: the file part and its bytes."""

    def __init__(self, data):
        self.data, self.filename = data, None

    def find_file(self):
        self.filename = "clip.mp4"

    def __iter__(self):
        return iter(chunks(self.data))


def keyed(pipeline, actor, key, data=MP4, options=None):
    opts = AudioOptions.parse(options or {"bitrate": "192k"})
    return pipeline.intake.receive(actor, Body(data), lambda: opts, key=key).job


def test_a_retry_with_the_same_key_returns_the_same_job_and_stores_nothing(pipeline, alice):
    first = keyed(pipeline, alice, "k-1")
    again = keyed(pipeline, alice, "k-1")
    assert again.id == first.id
    assert len(pipeline.jobs.rows) == 1 and len(pipeline.blobs.in_bucket(VIDEOS)) == 1
    assert pipeline.queue.converts == [first.id]


def test_the_same_key_for_another_request_is_refused(pipeline, alice):
    keyed(pipeline, alice, "k-2")
    with pytest.raises(InvalidInput):
        keyed(pipeline, alice, "k-2", data=MP4 + b"\x01")
    with pytest.raises(InvalidInput):
        keyed(pipeline, alice, "k-2", options={"bitrate": "320k"})
    assert len(pipeline.jobs.rows) == 1


def test_another_format_is_another_request_and_a_key_from_before_formats_still_matches(
    pipeline, alice
):
    from core.services.idempotency import Fingerprint

    first = keyed(pipeline, alice, "k-fmt")
    with pytest.raises(InvalidInput):
        keyed(pipeline, alice, "k-fmt", options={"bitrate": "192k", "format": "m4a"})
    # remembered by a server before formats: its options had no `format`
    before = Fingerprint()
    for _ in before.feed(chunks(MP4)):
        pass
    old = before.digest({"bitrate": "192k", "cover": "none", "track": 0})
    pipeline.keys.remember(alice, "k-old", old, job_id=first.id)
    assert keyed(pipeline, alice, "k-old").id == first.id


def test_a_key_still_being_received_conflicts(pipeline, alice):
    assert pipeline.keys.reserve(alice, "k-3") is None
    with pytest.raises(Conflict):
        pipeline.keys.reserve(alice, "k-3")


def test_keys_are_per_user_and_a_failed_request_frees_its_key(pipeline, alice, bob):
    mine = keyed(pipeline, alice, "shared")
    theirs = keyed(pipeline, bob, "shared")
    assert mine.id != theirs.id
    with pytest.raises(InvalidInput):
        keyed(pipeline, alice, "k-4", data=b"")
    assert keyed(pipeline, alice, "k-4").status is JobStatus.QUEUED


def test_a_retry_is_told_apart_and_stores_nothing_more(pipeline, alice):
    opts = AudioOptions.parse({})
    first = pipeline.intake.receive(alice, Body(MP4), lambda: opts, key="k-5")
    again = pipeline.intake.receive(alice, Body(MP4), lambda: opts, key="k-5")
    plain = pipeline.intake.receive(alice, Body(MP4), lambda: opts)
    assert (first.replayed, again.replayed, plain.replayed) == (False, True, False)
    assert again.job.id == first.job.id != plain.job.id
    assert len(pipeline.blobs.in_bucket(VIDEOS)) == 2


# --- retention ------------------------------------------------------------------------------


def test_the_source_goes_when_the_job_ends_and_the_mp3_when_it_expires(pipeline, alice):
    conversion = pipeline.rewired({"RETENTION_SECONDS": 60}).conversion
    job = submit(pipeline, alice)
    assert conversion.convert(job.id) is Outcome.DONE
    done = pipeline.jobs.get(job.id)
    assert done.video_fid is None and pipeline.blobs.in_bucket(VIDEOS) == []
    assert done.expires_at == done.finished_at + timedelta(seconds=60)
    assert pipeline.retention.purge() == []
    pipeline.jobs.update(job.id, {"expires_at": utcnow() - timedelta(seconds=1)})
    assert pipeline.retention.purge() == [job.id]
    expired = pipeline.jobs.get(job.id)
    assert expired.status is JobStatus.EXPIRED and expired.mp3_fid is None
    assert pipeline.blobs.in_bucket(MP3S) == []
    with pytest.raises(Gone):
        pipeline.service.download(alice, job.id)
    assert pipeline.retention.purge() == []  # idempotent


def test_a_purge_stopped_halfway_is_finished_by_the_next(pipeline, alice):
    jobs = [done_job(pipeline, alice) for _ in range(3)]
    for job in jobs:
        pipeline.jobs.update(job.id, {"expires_at": utcnow() - timedelta(seconds=1)})
    real_delete, calls = pipeline.blobs.delete, []

    def dies_on_second_delete(bucket, fid):
        calls.append(fid)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is killed here
        return real_delete(bucket, fid)

    pipeline.blobs.delete = dies_on_second_delete
    with pytest.raises(KeyboardInterrupt):
        pipeline.retention.purge()
    pipeline.blobs.delete = real_delete
    pipeline.retention.purge()
    for job in jobs:
        row = pipeline.jobs.get(job.id)
        assert row.status is JobStatus.EXPIRED and row.mp3_fid is None and row.video_fid is None
    assert pipeline.blobs.in_bucket(MP3S) == [] and pipeline.blobs.in_bucket(VIDEOS) == []


def test_keep_source_keeps_the_video_until_expiry(tmp_path, alice):
    kept = Pipeline(tmp_path, KEEP_SOURCE="true")
    job = done_job(kept, alice)
    kept.jobs.update(job.id, {"finished_at": utcnow() - timedelta(hours=1)})
    assert kept.retention.purge() == [] and len(kept.blobs.in_bucket(VIDEOS)) == 1
    kept.jobs.update(job.id, {"expires_at": utcnow() - timedelta(seconds=1)})
    assert kept.retention.purge() == [job.id] and kept.blobs.in_bucket(VIDEOS) == []


def test_list_filters_by_status(pipeline, alice):
    queued, done = submit(pipeline, alice), done_job(pipeline, alice)
    assert [j.id for j in pipeline.service.list(alice, 1, 20, JobStatus.DONE).items] == [done.id]
    assert [j.id for j in pipeline.service.list(alice, 1, 20, JobStatus.QUEUED).items] == [
        queued.id
    ]


def test_outcome_events_are_queued_and_again_when_the_email_was_lost(pipeline, alice):
    done = done_job(pipeline, alice)
    assert pipeline.queue.events == [(done.id, "job.succeeded")]
    assert pipeline.conversion.convert(done.id) is Outcome.GONE  # redelivered, not emailed yet
    assert pipeline.queue.events == [(done.id, "job.succeeded")] * 2  # emit makes it once
    pipeline.notifications.notify(done.id, pipeline.queue.holders[-1])
    assert pipeline.conversion.convert(done.id) is Outcome.GONE
    assert len(pipeline.queue.events) == 2
    failed = submit(pipeline, alice, data=MP4 + b"POISON")
    pipeline.conversion.convert(failed.id)
    cancelled = submit(pipeline, alice)
    pipeline.service.cancel(alice, cancelled.id)
    assert pipeline.queue.events[-2:] == [
        (failed.id, "job.failed"),
        (cancelled.id, "job.cancelled"),
    ]


# --- MySQL lost between storing the MP3 and recording it -------------------------------------


def test_an_mp3_stored_but_not_recorded_is_deleted(pipeline, alice, monkeypatch):
    """A partition cuts MySQL after the MP3 was written: the retry stores its own, so the
    unrecorded one must not stay beside it (two MP3s for one job)."""
    from core.domain.errors import Unavailable

    job = submit(pipeline, alice)
    real_update = pipeline.jobs.update_leased

    def cut_at_the_end(job_id, lease_id, changes):
        if changes.get("status") is JobStatus.DONE:
            raise Unavailable("mysql")
        return real_update(job_id, lease_id, changes)

    monkeypatch.setattr(pipeline.jobs, "update_leased", cut_at_the_end)
    with pytest.raises(Unavailable):
        pipeline.conversion.convert(job.id)
    assert pipeline.blobs.in_bucket(MP3S) == []
