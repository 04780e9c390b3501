"""ResumableUploads on fakes: offsets, checksums, ceilings, ownership, expiry, the job."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from core.domain.errors import (
    ChecksumMismatch,
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    TooLarge,
    UnsupportedMedia,
)
from core.domain.files import VIDEOS
from core.services.uploads import ResumableUploads, parse_checksum, parse_options
from tests.support.fakes import FakePartialStore, FakeUploadRepo

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 2  # 524 bytes, sniffed as MP4
DAY = 24 * 3600


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def tus(pipeline):
    clock = Clock()
    repo, store = FakeUploadRepo(), FakePartialStore(pipeline.blobs, clock)
    service = ResumableUploads(
        repo,
        store,
        pipeline.intake,
        max_length=1000,
        expires_seconds=DAY,
        clock=clock,
        keys=pipeline.keys,
    )
    service.clock_ = clock
    return service


def sha1(data: bytes) -> tuple[str, bytes]:
    return "sha1", hashlib.sha1(data).digest()


def dropped_after(data: bytes):
    """A body whose connection drops after data."""
    yield data
    raise ConnectionResetError("client went away")


def test_upload_in_pieces_becomes_a_queued_job(tus, pipeline, alice):
    upload = tus.create(alice, len(MP4), {"filename": "holiday.mp4", "bitrate": "320k"}).upload
    first = tus.append(alice, upload.id, 0, [MP4[:100]])
    assert not first.finished and first.upload.offset == 100
    assert tus.get(alice, upload.id).offset == 100
    last = tus.append(alice, upload.id, 100, [MP4[100:300], MP4[300:]], checksum=sha1(MP4[100:]))
    assert last.finished and last.upload.job_id
    job = pipeline.jobs.get(last.upload.job_id)
    assert job.video_filename == "holiday.mp4" and job.bitrate == "320k"
    assert job.video_size == len(MP4) and pipeline.queue.converts == [job.id]
    assert pipeline.blobs.in_bucket(VIDEOS) == [MP4]
    # the client asking again (its response was lost) learns the same job
    again = tus.append(alice, upload.id, len(MP4), [])
    assert again.finished and again.upload.job_id == job.id and len(pipeline.jobs.rows) == 1


def test_a_dropped_connection_keeps_what_arrived(tus, alice):
    upload = tus.create(alice, len(MP4), {}).upload
    with pytest.raises(ConnectionResetError):
        tus.append(alice, upload.id, 0, dropped_after(MP4[:200]))
    assert tus.get(alice, upload.id).offset == 200
    assert tus.append(alice, upload.id, 200, [MP4[200:]]).finished


def test_a_dropped_connection_with_a_checksum_keeps_nothing(tus, alice):
    upload = tus.create(alice, len(MP4), {}).upload
    with pytest.raises(ConnectionResetError):
        tus.append(alice, upload.id, 0, dropped_after(MP4[:200]), checksum=sha1(MP4))
    assert tus.get(alice, upload.id).offset == 0 and tus.store.size(upload.handle) == 0


def test_checksum_mismatch_appends_nothing(tus, alice):
    upload = tus.create(alice, len(MP4), {}).upload
    tus.append(alice, upload.id, 0, [MP4[:100]])
    with pytest.raises(ChecksumMismatch) as raised:
        tus.append(alice, upload.id, 100, [MP4[100:]], checksum=sha1(b"something else"))
    assert raised.value.status == 460
    assert tus.get(alice, upload.id).offset == 100 and tus.store.size(upload.handle) == 100


def test_wrong_offset_is_a_conflict(tus, alice):
    upload = tus.create(alice, len(MP4), {}).upload
    tus.append(alice, upload.id, 0, [MP4[:100]])
    for offset in (0, 50, 101):
        with pytest.raises(Conflict):
            tus.append(alice, upload.id, offset, [MP4[offset:]])
    assert tus.get(alice, upload.id).offset == 100


def test_a_second_writer_gets_a_conflict(tus, alice):
    upload = tus.create(alice, len(MP4), {}).upload

    def racing_body():
        yield MP4[:100]
        with pytest.raises(Conflict):  # a second PATCH while this one still streams
            tus.append(alice, upload.id, 0, [b"x" * 100])
        yield MP4[100:200]

    tus.append(alice, upload.id, 0, racing_body())
    assert tus.store.parts[upload.handle][1] == MP4[:200]


def test_ceilings(tus, alice):
    with pytest.raises(TooLarge):
        tus.create(alice, 1001, {})
    with pytest.raises(InvalidInput):
        tus.create(alice, 0, {})
    upload = tus.create(alice, 100, {}).upload
    with pytest.raises(TooLarge):
        tus.append(alice, upload.id, 0, [MP4[:101]], content_length=101)
    with pytest.raises(TooLarge):  # no Content-Length: caught while reading
        tus.append(alice, upload.id, 0, [MP4[:60], MP4[60:120]])
    assert tus.get(alice, upload.id).offset == 60


def test_bad_option_fails_at_creation(tus, alice):
    with pytest.raises(InvalidInput):
        tus.create(alice, 100, {"bitrate": "999k"})
    assert tus.store.parts == {} and tus.repo.rows == {}


def test_not_a_video_fails_at_the_end_and_leaves_nothing(tus, pipeline, alice):
    text = b"hello, I am text" * 10
    upload = tus.create(alice, len(text), {}).upload
    with pytest.raises(UnsupportedMedia):
        tus.append(alice, upload.id, 0, [text])
    assert pipeline.blobs.files == {} and pipeline.jobs.rows == {}
    with pytest.raises(NotFound):
        tus.get(alice, upload.id)


def test_others_cannot_see_resume_or_delete(tus, alice, bob, admin):
    upload = tus.create(alice, len(MP4), {}).upload
    for actor in (bob, admin):
        with pytest.raises(NotFound):
            tus.get(actor, upload.id)
        with pytest.raises(NotFound):
            tus.append(actor, upload.id, 0, [MP4])
        with pytest.raises(NotFound):
            tus.terminate(actor, upload.id)
    assert tus.get(alice, upload.id).offset == 0


def test_terminate_deletes_the_bytes(tus, alice):
    upload = tus.create(alice, len(MP4), {}).upload
    tus.append(alice, upload.id, 0, [MP4[:10]])
    tus.terminate(alice, upload.id)
    assert tus.store.parts == {}
    with pytest.raises(NotFound):
        tus.get(alice, upload.id)


def test_expired_uploads_are_gone_then_purged(tus, alice):
    upload = tus.create(alice, len(MP4), {}).upload
    tus.clock_.now += DAY - 1
    tus.append(alice, upload.id, 0, [MP4[:10]])  # a PATCH pushes the expiry further
    tus.clock_.now += DAY - 1
    assert tus.get(alice, upload.id).offset == 10
    tus.clock_.now += 2
    with pytest.raises(Gone):
        tus.get(alice, upload.id)
    with pytest.raises(Gone):
        tus.append(alice, upload.id, 10, [MP4[10:]])
    assert tus.purge_expired() == 1
    assert tus.store.parts == {} and tus.repo.rows == {}
    with pytest.raises(NotFound):
        tus.get(alice, upload.id)


def test_purge_removes_orphaned_bytes_only_when_old(tus, alice):
    live = tus.create(alice, len(MP4), {}).upload
    orphan = tus.store.create(VIDEOS)
    tus.store.touched[orphan] -= timedelta(days=1, hours=1, seconds=1)
    tus.store.touched[live.handle] -= timedelta(days=1, minutes=59)  # its state is still there
    assert tus.purge_expired() == 1
    assert list(tus.store.parts) == [live.handle]


def test_parse_helpers():
    assert parse_options({"bitrate": "128k", "filetype": "video/mp4"}) == {"bitrate": "128k"}
    digest = hashlib.sha1(b"abc").digest()
    assert parse_checksum("sha1 " + base64.b64encode(digest).decode()) == ("sha1", digest)
    for bad in ("crc32 AAAA", "sha1 not-base64!", ""):
        with pytest.raises(InvalidInput):
            parse_checksum(bad)


def test_the_beat_task_purges_through_the_service(tus, alice, settings):
    import celeryconfig
    import tasks
    from core.bootstrap import Container
    from tasks.uploads import purge_expired

    assert {
        "task": celeryconfig.PURGE_UPLOADS_TASK,
        "schedule": 600.0,
    } in celeryconfig.celery_config(settings)["beat_schedule"].values()
    assert purge_expired.name == celeryconfig.PURGE_UPLOADS_TASK
    tus.create(alice, len(MP4), {})
    tus.clock_.now += DAY + 1
    tasks.use_container(Container(settings, uploads=tus))
    try:
        assert purge_expired() == 1
    finally:
        tasks.use_container(None)
    assert tus.repo.rows == {} and tus.store.parts == {}


def test_a_keyed_creation_retried_returns_the_same_upload_and_counts_once(tus, pipeline, alice):
    first = tus.create(alice, len(MP4), {"filename": "a.mp4"}, key="k")
    again = tus.create(alice, len(MP4), {"filename": "a.mp4"}, key="k")
    assert not first.replayed and again.replayed and again.upload.id == first.upload.id
    assert len(tus.repo.rows) == 1
    assert [hits for _, hits in pipeline.limiter.windows.values()] == [1]
    with pytest.raises(InvalidInput):
        tus.create(alice, len(MP4), {"filename": "b.mp4"}, key="k")
    tus.terminate(alice, first.upload.id)
    with pytest.raises(NotFound):
        tus.create(alice, len(MP4), {"filename": "a.mp4"}, key="k")


def test_a_failed_keyed_creation_frees_its_key(tus, alice):
    with pytest.raises(InvalidInput):
        tus.create(alice, len(MP4), {"bitrate": "999k"}, key="k")
    assert not tus.create(alice, len(MP4), {}, key="k").replayed
