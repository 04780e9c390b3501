from datetime import timedelta

import pytest

from core.domain import InvalidInput, JobStatus, NotFound, TooLarge, UnsupportedMedia
from core.services.jobs import MP3S, VIDEOS, mp3_name, safe_filename

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100


def submit(pipeline, actor, data=MP4, name="clip.mp4", bitrate=None):
    chunks = [data[i:i + 64] for i in range(0, len(data), 64)]
    return pipeline.service.submit(actor, name, chunks, bitrate)


def test_upload_is_stored_recorded_and_queued(pipeline, alice):
    job = submit(pipeline, alice)
    assert job.status is JobStatus.QUEUED and job.video_size == len(MP4)
    assert pipeline.blobs.in_bucket(VIDEOS) == [MP4]
    assert pipeline.queue.converts == [job.id]
    assert job.bitrate == "192k"


@pytest.mark.parametrize("data,error", [(b"", InvalidInput), (b"hello, I am text" * 10, UnsupportedMedia),
                                        (MP4 + b"\x00" * 1000, TooLarge)])
def test_bad_uploads_store_nothing(pipeline, alice, data, error):
    with pytest.raises(error):
        submit(pipeline, alice, data)
    assert pipeline.blobs.files == {} and pipeline.jobs.rows == {} and not pipeline.queue.converts


def test_bad_bitrate_stores_nothing(pipeline, alice):
    with pytest.raises(InvalidInput):
        submit(pipeline, alice, bitrate="999k")
    assert pipeline.blobs.files == {} and pipeline.jobs.rows == {}


def test_bitrate_known_only_after_the_file_is_accepted(pipeline, alice):
    job = submit(pipeline, alice, bitrate=lambda: "320k")
    assert job.bitrate == "320k"


def test_convert_stores_one_mp3_and_queues_the_email(pipeline, alice):
    job = submit(pipeline, alice)
    assert pipeline.service.convert(job.id) is JobStatus.DONE
    done = pipeline.jobs.get(job.id)
    assert done.status is JobStatus.DONE and done.progress == 100.0 and done.duration_s == 3.0
    assert len(pipeline.blobs.in_bucket(MP3S)) == 1 and pipeline.queue.notifies == [job.id]


def test_redelivered_convert_does_nothing_more(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.service.convert(job.id)
    pipeline.service.convert(job.id)
    assert len(pipeline.encoded) == 1 and len(pipeline.blobs.in_bucket(MP3S)) == 1
    assert pipeline.queue.notifies == [job.id]


def test_rerun_after_a_crash_mid_conversion_finishes_once(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.jobs.update(job.id, {"status": JobStatus.CONVERTING, "attempts": 1})
    assert pipeline.service.convert(job.id) is JobStatus.DONE
    assert pipeline.jobs.get(job.id).attempts == 2 and len(pipeline.blobs.in_bucket(MP3S)) == 1


def test_poison_input_fails_once_with_the_reason(pipeline, alice):
    job = submit(pipeline, alice, MP4 + b"POISON")
    assert pipeline.service.convert(job.id) is JobStatus.FAILED
    failed = pipeline.jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and "cannot read" in failed.error
    assert pipeline.service.convert(job.id) is JobStatus.FAILED
    assert pipeline.blobs.in_bucket(MP3S) == [] and pipeline.queue.notifies == []


def test_missing_video_fails_cleanly(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.blobs.delete(VIDEOS, job.video_fid)
    assert pipeline.service.convert(job.id) is JobStatus.FAILED
    assert "missing" in pipeline.jobs.get(job.id).error


def test_job_deleted_during_conversion_leaves_no_mp3(pipeline, alice):
    job = submit(pipeline, alice)
    original = pipeline.service.encoder

    def encode_then_delete(*args, **kwargs):
        info = original(*args, **kwargs)
        pipeline.jobs.delete(job.id)
        return info

    pipeline.service.encoder = encode_then_delete
    pipeline.service.convert(job.id)
    assert pipeline.blobs.in_bucket(MP3S) == [] and pipeline.queue.notifies == []


def test_notify_emails_the_owner_once(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.service.convert(job.id)
    assert pipeline.service.notify(job.id) is True
    assert pipeline.service.notify(job.id) is False
    [email] = pipeline.mailer.sent
    assert email.to == "alice@example.com" and job.id in email.body
    assert f"http://api.test/jobs/{job.id}/mp3" in email.body
    assert pipeline.jobs.get(job.id).notified_at is not None


def test_notify_failure_propagates_for_retry_and_records_nothing(pipeline, alice):
    from core.ports import MailError

    job = submit(pipeline, alice)
    pipeline.service.convert(job.id)
    pipeline.mailer.failures = 1
    with pytest.raises(MailError):
        pipeline.service.notify(job.id)
    assert pipeline.jobs.get(job.id).notified_at is None
    assert pipeline.service.notify(job.id) is True


def test_others_jobs_look_missing(pipeline, alice, bob, admin):
    job = submit(pipeline, alice)
    pipeline.service.convert(job.id)
    for call in (lambda: pipeline.service.get(bob, job.id),
                 lambda: pipeline.service.download(bob, job.id),
                 lambda: pipeline.service.delete(bob, job.id),
                 lambda: pipeline.service.download_by_fid(bob, pipeline.jobs.get(job.id).mp3_fid)):
        with pytest.raises(NotFound):
            call()
    assert pipeline.service.download(admin, job.id).filename == "clip.mp3"


def test_download_waits_for_done(pipeline, alice):
    job = submit(pipeline, alice)
    with pytest.raises(NotFound):
        pipeline.service.download(alice, job.id)


def test_delete_removes_job_and_both_files(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.service.convert(job.id)
    pipeline.service.delete(alice, job.id)
    assert pipeline.blobs.files == {} and pipeline.jobs.rows == {}


def test_purge_owner_removes_every_job(pipeline, alice, bob):
    submit(pipeline, alice), submit(pipeline, alice)
    kept = submit(pipeline, bob)
    pipeline.service.purge_owner(alice.user_id)
    assert list(pipeline.jobs.rows) == [kept.id]


def test_list_is_newest_first_and_own_only(pipeline, alice, bob):
    first, second = submit(pipeline, alice), submit(pipeline, alice)
    submit(pipeline, bob)
    pipeline.jobs.rows[second.id].created_at += timedelta(seconds=1)
    page = pipeline.service.list(alice, 1, 10)
    assert [j.id for j in page.items] == [second.id, first.id] and page.total == 2


def test_sweeper_requeues_stuck_jobs_once_per_deadline(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.jobs.rows[job.id].updated_at -= timedelta(minutes=30)
    assert pipeline.service.requeue_stale(timedelta(minutes=15)) == [job.id]
    assert pipeline.service.requeue_stale(timedelta(minutes=15)) == []
    assert pipeline.queue.converts == [job.id, job.id]


@pytest.mark.parametrize("raw,expected", [
    ("../../etc/passwd", "passwd"), ("C:\\videos\\clip.mp4", "clip.mp4"),
    ('a"b\'c.mp4', "abc.mp4"), ("new\nline\r.mp4", "newline.mp4"), ("", "video"),
    ("Été à Paris.mp4", "Été à Paris.mp4"), ("..", "video")])
def test_safe_filename(raw, expected):
    assert safe_filename(raw) == expected


def test_mp3_name_swaps_the_extension():
    assert mp3_name("holiday.final.mov") == "holiday.final.mp3"
