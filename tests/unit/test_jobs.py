import threading
from datetime import timedelta

import pytest

from core.domain.errors import (
    InvalidInput,
    MediaError,
    NotFound,
    QuotaExceeded,
    TooLarge,
    UnsupportedMedia,
)
from core.domain.files import MP3S, VIDEOS, mp3_name, safe_filename
from core.domain.jobs import JobStatus
from core.domain.options import AudioOptions
from core.domain.values import utcnow
from core.ports.mail import MailError
from core.services.conversion import Outcome
from tests.support.pipeline import MP4, submit
from tests.support.wait import wait_for


def test_upload_is_stored_recorded_and_queued(pipeline, alice):
    job = submit(pipeline, alice)
    assert job.status is JobStatus.QUEUED and job.video_size == len(MP4)
    assert pipeline.blobs.in_bucket(VIDEOS) == [MP4]
    assert pipeline.queue.converts == [job.id]
    assert job.bitrate == "192k"


@pytest.mark.parametrize(
    "data,error",
    [
        (b"", InvalidInput),
        (b"hello, I am text" * 10, UnsupportedMedia),
        (MP4 + bytes(1 << 20), TooLarge),  # MAX_UPLOAD_MB is 1
    ],
)
def test_bad_uploads_store_nothing(pipeline, alice, data, error):
    with pytest.raises(error):
        submit(pipeline, alice, data)
    assert pipeline.blobs.files == {} and pipeline.jobs.rows == {} and not pipeline.queue.converts


def test_bad_options_store_nothing(pipeline, alice):
    with pytest.raises(InvalidInput):
        submit(pipeline, alice, options=lambda: AudioOptions.parse({"bitrate": "999k"}))
    assert pipeline.blobs.files == {} and pipeline.jobs.rows == {}


def test_options_known_only_after_the_file_is_accepted(pipeline, alice):
    job = submit(pipeline, alice, options=lambda: AudioOptions.parse({"bitrate": "320k"}))
    assert job.bitrate == "320k"
    assert job.options == {
        "format": "mp3",
        "bitrate": "320k",
        "title": "clip",
        "cover": "none",
        "track": 0,
    }


def test_the_job_shows_vbr_and_keeps_a_given_title(pipeline, alice):
    job = submit(pipeline, alice, options=AudioOptions.parse({"quality": "3", "title": "Talk"}))
    assert job.bitrate == "V3"
    assert job.options == {
        "format": "mp3",
        "quality": 3,
        "title": "Talk",
        "cover": "none",
        "track": 0,
    }


def test_convert_stores_one_mp3_and_queues_the_email(pipeline, alice):
    job = submit(pipeline, alice)
    assert pipeline.conversion.convert(job.id) is Outcome.DONE
    done = pipeline.jobs.get(job.id)
    assert done.status is JobStatus.DONE and done.progress == 100.0 and done.duration_s == 3.0
    assert len(pipeline.blobs.in_bucket(MP3S)) == 1 and pipeline.queue.notifies == [job.id]


def test_redelivered_convert_does_nothing_more(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    pipeline.notifications.notify(job.id, pipeline.queue.holders[-1])
    pipeline.conversion.convert(job.id)
    assert len(pipeline.encoded) == 1 and len(pipeline.blobs.in_bucket(MP3S)) == 1
    assert pipeline.queue.notifies == [job.id]


def test_an_email_lost_between_done_and_its_queueing_is_queued_again_and_sent_once(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    first = pipeline.queue.holders[-1]  # the message queued with the email's claim
    pipeline.queue.notifies.clear()
    assert pipeline.conversion.convert(job.id) is Outcome.GONE  # a redelivery
    assert pipeline.queue.notifies == []  # the first message's claim runs: no second one
    # the attempt died after marking the job done, before it claimed and queued the email
    pipeline.jobs.rows[job.id].notify_holder = pipeline.jobs.rows[job.id].notify_until = None
    assert pipeline.conversion.convert(job.id) is Outcome.GONE
    assert pipeline.queue.notifies == [job.id]
    second = pipeline.queue.holders[-1]
    assert pipeline.notifications.notify(job.id, first) is False  # claimed by the second
    assert pipeline.notifications.notify(job.id, second) is True
    assert pipeline.notifications.notify(job.id, first) is False
    assert len(pipeline.mailer.sent) == 1 and len(pipeline.blobs.in_bucket(MP3S)) == 1


def test_rerun_after_a_crash_mid_conversion_finishes_once_the_lease_expired(pipeline, alice):
    job = submit(pipeline, alice)
    assert pipeline.jobs.claim(job.id, "d" * 32, utcnow() + timedelta(seconds=60), utcnow())
    assert pipeline.conversion.convert(job.id) is Outcome.LEASED  # the dead holder's lease runs
    pipeline.jobs.rows[job.id].lease_expires_at = utcnow() - timedelta(seconds=1)
    assert pipeline.conversion.convert(job.id) is Outcome.DONE
    assert pipeline.jobs.get(job.id).attempts == 2 and len(pipeline.blobs.in_bucket(MP3S)) == 1


def test_poison_input_fails_once_with_the_reason(pipeline, alice):
    job = submit(pipeline, alice, MP4 + b"POISON")
    assert pipeline.conversion.convert(job.id) is Outcome.FAILED
    failed = pipeline.jobs.get(job.id)
    assert failed.status is JobStatus.FAILED and failed.error == MediaError.NOT_MEDIA
    assert "Invalid data" not in failed.error  # ffmpeg's own words stay in the server log
    assert pipeline.conversion.convert(job.id) is Outcome.GONE
    assert pipeline.blobs.in_bucket(MP3S) == [] and pipeline.queue.notifies == []


def test_missing_video_fails_cleanly(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.blobs.delete(VIDEOS, job.video_fid)
    assert pipeline.conversion.convert(job.id) is Outcome.FAILED
    assert pipeline.jobs.get(job.id).error == MediaError.MISSING


def test_job_deleted_during_conversion_leaves_no_mp3(pipeline, alice):
    job = submit(pipeline, alice)
    original = pipeline.transcoder.encode_audio

    def encode_then_delete(*args, **kwargs):
        info = original(*args, **kwargs)
        pipeline.jobs.delete(job.id)
        return info

    pipeline.transcoder.encode_audio = encode_then_delete
    assert pipeline.conversion.convert(job.id) is Outcome.LOST
    assert pipeline.blobs.in_bucket(MP3S) == [] and pipeline.queue.notifies == []


def test_notify_emails_the_owner_once(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    holder = pipeline.queue.holders[-1]
    assert pipeline.notifications.notify(job.id, holder) is True
    assert pipeline.notifications.notify(job.id, holder) is False
    [email] = pipeline.mailer.sent
    assert email.to == "alice@example.com" and job.id in email.body
    assert f"http://api.test/jobs/{job.id}/mp3" in email.body
    assert pipeline.jobs.get(job.id).notified_at is not None


def test_the_email_of_another_format_names_it_and_links_its_audio(pipeline, alice):
    job = submit(pipeline, alice, name="Talk.mov", options=AudioOptions(format="flac"))
    pipeline.conversion.convert(job.id)
    fid = pipeline.jobs.get(job.id).mp3_fid
    assert pipeline.blobs.stat(MP3S, fid).content_type == "audio/flac"
    assert pipeline.notifications.notify(job.id, pipeline.queue.holders[-1]) is True
    [email] = pipeline.mailer.sent
    assert email.subject == "Your FLAC is ready: \u201cTalk.flac\u201d"
    assert f"http://api.test/jobs/{job.id}/audio" in email.body
    assert "/mp3" not in email.body


def test_notify_failure_propagates_for_retry_and_records_nothing(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    holder = pipeline.queue.holders[-1]
    pipeline.mailer.failures = 1
    with pytest.raises(MailError):
        pipeline.notifications.notify(job.id, holder)
    assert pipeline.jobs.get(job.id).notified_at is None
    assert pipeline.notifications.notify(job.id, holder) is True  # its retry


def test_others_jobs_look_missing(pipeline, alice, bob, admin):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    for call in (
        lambda: pipeline.service.get(bob, job.id),
        lambda: pipeline.service.download(bob, job.id),
        lambda: pipeline.service.delete(bob, job.id),
        lambda: pipeline.service.download_by_fid(bob, pipeline.jobs.get(job.id).mp3_fid),
    ):
        with pytest.raises(NotFound):
            call()
    assert pipeline.service.download(admin, job.id).filename == "clip.mp3"


def test_download_waits_for_done(pipeline, alice):
    job = submit(pipeline, alice)
    with pytest.raises(NotFound):
        pipeline.service.download(alice, job.id)


def test_delete_removes_job_and_both_files(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
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


def test_sweeper_requeues_a_queued_job_the_broker_lost_once_per_deadline(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.jobs.rows[job.id].updated_at -= timedelta(minutes=30)
    assert pipeline.sweeper.sweep() == [job.id]
    assert pipeline.sweeper.sweep() == []
    assert pipeline.queue.converts == [job.id, job.id]


def test_sweeper_leaves_a_queued_job_the_broker_still_holds(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.queue.waiting.append(job.id)
    pipeline.jobs.rows[job.id].updated_at -= timedelta(hours=3)
    assert pipeline.sweeper.sweep() == [] and pipeline.queue.converts == [job.id]


def test_sweeper_emails_a_finished_job_never_notified_once(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    pipeline.queue.notifies.clear()  # lost
    first = pipeline.queue.holders[-1]
    assert pipeline.sweeper.sweep() == []  # just finished: its email is on its way
    pipeline.jobs.rows[job.id].finished_at -= timedelta(minutes=30)
    assert pipeline.sweeper.sweep() == []  # the lost message's claim still runs
    pipeline.jobs.rows[job.id].notify_until -= timedelta(minutes=30)
    assert pipeline.sweeper.sweep() == [job.id] and pipeline.queue.notifies == [job.id]
    assert pipeline.sweeper.sweep() == []  # claimed for the message it queued
    holder = pipeline.queue.holders[-1]
    assert pipeline.notifications.notify(job.id, first) is False  # the lost one, late: nothing
    assert pipeline.notifications.notify(job.id, holder) is True
    assert len(pipeline.mailer.sent) == 1


def test_a_notify_waiting_to_retry_keeps_its_claim(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.conversion.convert(job.id)
    chain = pipeline.queue.holders[-1]
    pipeline.mailer.failures = 1
    with pytest.raises(MailError):
        pipeline.notifications.notify(job.id, chain)
    pipeline.notifications.hold(job.id, chain, 600)
    pipeline.jobs.rows[job.id].finished_at -= timedelta(minutes=30)
    assert pipeline.sweeper.sweep() == []  # the retry is coming: no second chain
    assert pipeline.notifications.notify(job.id, chain) is True
    assert len(pipeline.mailer.sent) == 1


def test_a_silent_conversion_keeps_its_job_past_the_sweep_threshold(pipeline, alice):
    """A source without a duration reports no progress; the heartbeat keeps the lease alive,
    so the sweeper never hands the job to a second encoder."""
    job = submit(pipeline, alice)
    pipeline.transcoder.hold = threading.Event()
    first = threading.Thread(target=pipeline.conversion.convert, args=(job.id,))
    first.start()
    try:
        wait_for(lambda: pipeline.transcoder.running == 1, timeout=5)
        pipeline.jobs.rows[job.id].updated_at -= timedelta(hours=1)  # no progress for an hour
        deadline = utcnow() + timedelta(seconds=4)  # longer than the 3 s lease
        while utcnow() < deadline:
            assert pipeline.sweeper.sweep() == []
            assert pipeline.conversion.convert(job.id) is Outcome.LEASED  # a second delivery
            wait_for(lambda: True, timeout=0.2)
    finally:
        pipeline.transcoder.hold.set()
        first.join(10)
    assert pipeline.transcoder.most_at_once == 1 and len(pipeline.encoded) == 1
    assert pipeline.jobs.get(job.id).status is JobStatus.DONE
    assert len(pipeline.blobs.in_bucket(MP3S)) == 1 and pipeline.queue.notifies == [job.id]


def test_two_deliveries_at_once_run_one_encoder(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.transcoder.hold = threading.Event()
    outcomes = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(pipeline.conversion.convert(job.id)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    wait_for(lambda: pipeline.transcoder.running == 1 and len(outcomes) == 1, timeout=5)
    pipeline.transcoder.hold.set()
    for thread in threads:
        thread.join(10)
    assert sorted(o.value for o in outcomes) == ["done", "leased"]
    assert len(pipeline.blobs.in_bucket(MP3S)) == 1 and pipeline.queue.notifies == [job.id]


def test_an_attempt_that_lost_its_lease_stops_and_writes_nothing(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.transcoder.hold = threading.Event()
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(pipeline.conversion.convert(job.id)))
    worker.start()
    wait_for(lambda: pipeline.transcoder.running == 1, timeout=5)
    pipeline.jobs.rows[job.id].lease_id = "e" * 32  # the sweeper gave it to someone else
    worker.join(10)
    assert outcome == [Outcome.LOST] and pipeline.encoded == []
    assert pipeline.blobs.in_bucket(MP3S) == [] and pipeline.queue.notifies == []


def test_expired_lease_is_swept_and_converted_again(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.jobs.claim(
        job.id, "d" * 32, utcnow() - timedelta(seconds=1), utcnow() - timedelta(seconds=2)
    )
    assert pipeline.sweeper.sweep() == [job.id]
    assert pipeline.conversion.convert(job.id) is Outcome.DONE


def test_no_audio_fails_with_a_clear_reason(pipeline, alice):
    job = submit(pipeline, alice, MP4 + b"SILENT")
    assert pipeline.conversion.convert(job.id) is Outcome.FAILED
    assert pipeline.jobs.get(job.id).error == MediaError.NO_AUDIO


def test_active_job_quota_answers_429_naming_the_limit(pipeline, alice, bob):
    for _ in range(pipeline.quotas.active_jobs):
        submit(pipeline, alice)
    with pytest.raises(QuotaExceeded) as err:
        submit(pipeline, alice)
    assert err.value.status == 429 and err.value.details["quota"]["limit"] == "QUOTA_ACTIVE_JOBS"
    assert err.value.retry_after
    assert submit(pipeline, bob)  # another user is not affected


def test_stored_bytes_quota_answers_413_and_stores_nothing(pipeline, alice):
    pipeline.intake.quotas = pipeline.quotas.__class__(100, 3600, 50, len(MP4) * 2)
    submit(pipeline, alice), submit(pipeline, alice)
    stored = len(pipeline.blobs.files)
    with pytest.raises(QuotaExceeded) as err:
        submit(pipeline, alice)
    assert err.value.status == 413 and err.value.details["quota"]["limit"] == "QUOTA_STORED_MB"
    assert len(pipeline.blobs.files) == stored


def test_a_stream_that_crosses_the_stored_quota_midway_is_discarded(pipeline, alice):
    pipeline.intake.quotas = pipeline.quotas.__class__(100, 3600, 50, len(MP4) + 50)
    with pytest.raises(QuotaExceeded):
        submit(pipeline, alice, MP4 + b"\x00" * 100)
    assert pipeline.blobs.files == {} and pipeline.jobs.rows == {}


def test_an_admitted_upload_holds_its_room_until_it_ends(pipeline, alice):
    """While one upload's bytes arrive, a second cannot take the room the first holds; a
    failed upload gives its room back, a finished one leaves only its job."""
    pipeline.intake.quotas = pipeline.quotas.__class__(100, 3600, 50, len(MP4) * 2)
    with pipeline.intake.admitted(alice, len(MP4) * 2):
        with pytest.raises(QuotaExceeded) as err:
            pipeline.intake.admit(alice, 10)
        assert err.value.details["quota"]["used"] == len(MP4) * 2
    with pytest.raises(UnsupportedMedia):
        submit(pipeline, alice, b"not a video" * 20)
    assert pipeline.jobs.holds == {}
    job = submit(pipeline, alice)
    assert pipeline.jobs.holds == {}
    assert pipeline.jobs.usage(alice.user_id) == (1, job.video_size)


def test_a_job_is_recorded_only_within_the_quota_even_if_its_hold_expired(pipeline, alice):
    pipeline.intake.quotas = pipeline.quotas.__class__(100, 3600, 1, 10**9)
    with pipeline.intake.admitted(alice) as admission:
        pipeline.jobs.release_hold(admission.hold_id)  # as if it had expired
        submit(pipeline, alice)  # another upload took the only job slot meanwhile
        with pytest.raises(QuotaExceeded) as err:
            pipeline.intake.submit(alice, "late.mp4", [MP4], admission=admission)
    assert err.value.details["quota"]["limit"] == "QUOTA_ACTIVE_JOBS"
    assert len(pipeline.jobs.rows) == 1 and len(pipeline.blobs.in_bucket(VIDEOS)) == 1


def test_upload_rate_limit_answers_429_with_retry_after(pipeline, alice, bob):
    pipeline.intake.quotas = pipeline.quotas.__class__(2, 60, 50, 10**9)
    submit(pipeline, alice), submit(pipeline, alice)
    with pytest.raises(QuotaExceeded) as err:
        submit(pipeline, alice)
    assert (err.value.status, err.value.retry_after) == (429, 60)
    assert submit(pipeline, bob)
    pipeline.limiter.now += 61
    assert submit(pipeline, alice)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\videos\\clip.mp4", "clip.mp4"),
        ("a\"b'c.mp4", "abc.mp4"),
        ("new\nline\r.mp4", "newline.mp4"),
        ("", "video"),
        ("Été à Paris.mp4", "Été à Paris.mp4"),
        ("..", "video"),
    ],
)
def test_safe_filename(raw, expected):
    assert safe_filename(raw) == expected


def test_mp3_name_swaps_the_extension():
    assert mp3_name("holiday.final.mov") == "holiday.final.mp3"


def test_the_chosen_bitrate_reaches_the_encoder_and_the_output_stays_in_scratch(
    pipeline, alice, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    job = submit(pipeline, alice, options=AudioOptions.parse({"bitrate": "320k"}))
    pipeline.conversion.convert(job.id)
    assert [bitrate for _, bitrate in pipeline.encoded] == ["320k"]
    assert list(tmp_path.iterdir()) == [tmp_path / "scratch"]  # nothing written beside it
    assert list((tmp_path / "scratch").iterdir()) == []  # the attempt's directory is gone


def test_a_heartbeat_that_cannot_reach_mysql_gives_up_the_job_once_its_lease_ran_out(
    pipeline, alice
):
    from core.domain.errors import Unavailable

    job = submit(pipeline, alice)
    pipeline.transcoder.hold = threading.Event()
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(pipeline.conversion.convert(job.id)))
    worker.start()
    wait_for(lambda: pipeline.transcoder.running == 1, timeout=5)

    def down(*args, **kwargs):
        raise Unavailable("mysql")

    pipeline.jobs.renew = down
    worker.join(10)  # the 3 s lease runs out: the attempt stops rather than write blind
    assert outcome == [Outcome.LOST] and pipeline.blobs.in_bucket(MP3S) == []


def test_sweeper_emits_events_whose_emission_was_lost(pipeline, alice):
    class Hooks:
        windows: list = []

        def unannounced(self, after, before):
            self.windows.append((after, before))
            return [("f" * 32, "job.failed"), ("c" * 32, "job.cancelled")]

    hooks = Hooks()
    sweeper = pipeline.rewired({"SWEEP_AFTER_SECONDS": 15 * 60}, webhook_repo=hooks).sweeper
    assert sweeper.sweep() == ["f" * 32, "c" * 32]
    assert pipeline.queue.events[-2:] == [("f" * 32, "job.failed"), ("c" * 32, "job.cancelled")]
    [(after, before)] = hooks.windows
    # only jobs that ended more than SWEEP_AFTER ago (their own event had its chance), within a day
    assert utcnow() - before >= timedelta(minutes=15) and before - after == timedelta(hours=24)


def test_a_job_whose_attempt_died_here_is_taken_over_without_waiting_for_its_lease(pipeline, alice):
    from tests.support.fakes import FakeHolders

    holders = FakeHolders("here:200:7")
    conversion = pipeline.rewired(attempt_holders=holders).conversion
    job = submit(pipeline, alice)
    now = utcnow()
    # an attempt on this host holds it for a minute, and is SIGKILLed
    assert pipeline.jobs.claim(job.id, "d" * 32, now + timedelta(seconds=60), now, "here:99:5")
    assert conversion.convert(job.id) is Outcome.LEASED  # alive, as far as we know
    holders.gone.add("here:99:5")
    assert conversion.convert(job.id) is Outcome.DONE
    done = pipeline.jobs.get(job.id)
    assert done.attempts == 2 and done.lease_holder == "here:200:7"
    assert len(pipeline.encoded) == 1 and len(pipeline.blobs.in_bucket(MP3S)) == 1


def test_sweeper_fetches_again_an_import_whose_fetch_stalled_once_per_deadline(pipeline, alice):
    job = submit(pipeline, alice)
    pipeline.jobs.rows[job.id].status = JobStatus.FETCHING
    pipeline.jobs.rows[job.id].updated_at -= timedelta(minutes=30)
    assert pipeline.sweeper.sweep() == [job.id]
    assert pipeline.sweeper.sweep() == []
    assert pipeline.queue.fetches == [job.id] and pipeline.queue.converts == [job.id]
