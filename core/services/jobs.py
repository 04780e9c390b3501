"""The media pipeline: accept an upload, convert it, tell the owner, serve and delete results."""
from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import tempfile
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator

from core import media
from core.domain import (BITRATES, DEFAULT_BITRATE, Blob, Email, InvalidInput, Job, JobStatus,
                         MediaError, NotFound, Principal, TooLarge, UnsupportedMedia)
from core.ports import BlobStore, JobRepository, Mailer, TaskQueue, UserRepository
from core.services.users import Page

log = logging.getLogger(__name__)

VIDEOS, MP3S = "videos", "mp3s"
SNIFF_BYTES = 4096
Encoder = Callable[..., media.MediaInfo]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def safe_filename(name: str | None, fallback: str = "video") -> str:
    """A file name without directories, control characters or quotes, at most 200 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in "\"'`")
    name = name.strip(" .")[:200]
    return name or fallback


def check_bitrate(value: str | None) -> str:
    """The MP3 bitrate asked for, or the default; InvalidInput for any other value."""
    chosen = value or DEFAULT_BITRATE
    if chosen not in BITRATES:
        raise InvalidInput("invalid bitrate", {"fields": {"bitrate": [
            f"one of {', '.join(BITRATES)}"]}})
    return chosen


def mp3_name(original: str) -> str:
    stem = os.path.splitext(safe_filename(original))[0] or "audio"
    return f"{stem}.mp3"


@dataclass
class Download:
    job: Job
    blob: Blob
    filename: str


class JobService:
    def __init__(self, jobs: JobRepository, users: UserRepository, blobs: BlobStore,
                 queue: TaskQueue, mailer: Mailer, scratch_dir: str, base_url: str,
                 max_upload_bytes: int, encoder: Encoder | None = None,
                 sniffer: Callable[[bytes], str | None] | None = None):
        self.jobs = jobs
        self.users = users
        self.blobs = blobs
        self.queue = queue
        self.mailer = mailer
        self.scratch_dir = scratch_dir
        self.base_url = base_url.rstrip("/")
        self.max_upload_bytes = max_upload_bytes
        self.encoder = encoder or media.encode_mp3
        self.sniffer = sniffer or media.sniff

    # --- upload ------------------------------------------------------------------------

    def submit(self, actor: Principal, filename: str | None, chunks: Iterable[bytes],
               bitrate: str | Callable[[], str | None] | None = None) -> Job:
        """Stream an upload into the blob store, record a queued job and enqueue its conversion.

        `bitrate` may be a callable, asked once the upload is read (a form field can follow
        the file)."""
        original = safe_filename(filename)
        job_id = uuid.uuid4().hex
        blob_fid, size = self._store_upload(actor, job_id, original, iter(chunks))
        try:
            bitrate = check_bitrate(bitrate() if callable(bitrate) else bitrate)
        except InvalidInput:
            self.blobs.delete(VIDEOS, blob_fid)
            raise
        job = Job(id=job_id, owner_id=actor.user_id, status=JobStatus.QUEUED, video_fid=blob_fid,
                  video_filename=original, video_size=size, bitrate=bitrate)
        try:
            job = self.jobs.add(job)
        except BaseException:
            self.blobs.delete(VIDEOS, blob_fid)
            raise
        try:
            self.queue.enqueue_convert(job.id)
        except Exception:  # the job is safe in MySQL; the sweeper enqueues it again
            log.exception("could not enqueue job %s; it stays queued for the sweeper", job.id)
        return job

    def _store_upload(self, actor: Principal, job_id: str, filename: str,
                      chunks: Iterator[bytes]) -> tuple[str, int]:
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                break
        if not head:
            raise InvalidInput("the uploaded file is empty", {"fields": {"file": ["empty"]}})
        if self.sniffer(head[:SNIFF_BYTES]) is None:
            raise UnsupportedMedia("the upload is not a video or audio file")
        size = 0
        with self.blobs.writer(VIDEOS, filename, "application/octet-stream",
                               {"owner_id": actor.user_id, "job_id": job_id}) as writer:
            for chunk in _prepend(head, chunks):
                size += len(chunk)
                if size > self.max_upload_bytes:
                    raise TooLarge(f"uploads are limited to {self.max_upload_bytes // 2**20} MiB")
                writer.write(chunk)
        return writer.fid, size

    # --- reading -----------------------------------------------------------------------

    def get(self, actor: Principal, job_id: str) -> Job:
        job = self.jobs.get(job_id) if _is_job_id(job_id) else None
        if job is None or not actor.can_access(job.owner_id):
            raise NotFound("job not found")
        return job

    def list(self, actor: Principal, page: int, per_page: int) -> Page:
        jobs, total = self.jobs.list_for_owner(actor.user_id, (page - 1) * per_page, per_page)
        return Page(jobs, page, per_page, total)

    def download(self, actor: Principal, job_id: str) -> Download:
        job = self.get(actor, job_id)
        if job.status is not JobStatus.DONE or not job.mp3_fid:
            raise NotFound("the MP3 is not ready")
        blob = self.blobs.stat(MP3S, job.mp3_fid)
        if blob is None:
            raise NotFound("the MP3 is gone")
        return Download(job, blob, mp3_name(job.video_filename))

    def download_by_fid(self, actor: Principal, fid: str) -> Download:
        blob = self.blobs.stat(MP3S, fid) if fid else None
        job_id = str((blob.metadata or {}).get("job_id", "")) if blob else ""
        job = self.jobs.get(job_id) if _is_job_id(job_id) else None
        if blob is None or job is None or job.mp3_fid != fid or job.status is not JobStatus.DONE \
                or not actor.can_access(job.owner_id):
            raise NotFound("file not found")
        return Download(job, blob, mp3_name(job.video_filename))

    def open(self, download: Download) -> Any:
        return self.blobs.open(MP3S, download.blob.fid)

    # --- deleting ----------------------------------------------------------------------

    def delete(self, actor: Principal, job_id: str) -> None:
        self._remove(self.get(actor, job_id))

    def purge_owner(self, owner_id: int) -> None:
        """Remove every job of a user with both files: run before the user is deleted."""
        for job_id in self.jobs.list_ids_for_owner(owner_id):
            job = self.jobs.get(job_id)
            if job:
                self._remove(job)

    def _remove(self, job: Job) -> None:
        self.jobs.delete(job.id)
        self.blobs.delete(VIDEOS, job.video_fid)
        if job.mp3_fid:
            self.blobs.delete(MP3S, job.mp3_fid)

    # --- the worker side ---------------------------------------------------------------

    def convert(self, job_id: str) -> JobStatus | None:
        """Turn the job's video into an MP3; idempotent, and permanent media errors fail once."""
        job = self.jobs.get(job_id)
        if job is None or job.status in (JobStatus.DONE, JobStatus.FAILED):
            return job.status if job else None
        self.jobs.update(job_id, {"status": JobStatus.CONVERTING, "started_at": utcnow(),
                                  "attempts": job.attempts + 1, "progress": 0.0, "error": None},
                         only_if_status=(JobStatus.QUEUED, JobStatus.CONVERTING))
        self._clear_scratch(job_id)
        with tempfile.TemporaryDirectory(prefix=f"job-{job_id}-", dir=self.scratch_dir) as tmp:
            output = os.path.join(tmp, "out.mp3")
            try:
                with self.blobs.local_path(VIDEOS, job.video_fid, tmp) as source:
                    info = self.encoder(source, output, job.bitrate,
                                        on_progress=lambda pct: self._progress(job_id, pct))
            except NotFound:
                return self.fail(job_id, "the uploaded video is missing")
            except MediaError as exc:
                return self.fail(job_id, str(exc))
            with open(output, "rb") as fh, self.blobs.writer(
                    MP3S, mp3_name(job.video_filename), "audio/mpeg",
                    {"owner_id": job.owner_id, "job_id": job_id}) as writer:
                while chunk := fh.read(1 << 20):
                    writer.write(chunk)
            finished = self.jobs.update(job_id, {
                "status": JobStatus.DONE, "progress": 100.0, "mp3_fid": writer.fid,
                "mp3_size": os.path.getsize(output), "duration_s": info.duration,
                "finished_at": utcnow(), "error": None},
                only_if_status=(JobStatus.QUEUED, JobStatus.CONVERTING))
        if not finished:  # deleted meanwhile, or another delivery finished first
            self.blobs.delete(MP3S, writer.fid)
            current = self.jobs.get(job_id)
            return current.status if current else None
        self.queue.enqueue_notify(job_id)
        return JobStatus.DONE

    def _clear_scratch(self, job_id: str) -> None:
        """Remove what an earlier, killed attempt at this job left in the scratch directory."""
        os.makedirs(self.scratch_dir, exist_ok=True)
        for leftover in glob.glob(os.path.join(self.scratch_dir, f"job-{job_id}-*")):
            shutil.rmtree(leftover, ignore_errors=True)

    def _progress(self, job_id: str, percent: float) -> None:
        self.jobs.update(job_id, {"progress": round(min(max(percent, 0.0), 99.9), 1)},
                         only_if_status=(JobStatus.CONVERTING,))

    def fail(self, job_id: str, error: str) -> JobStatus:
        """End a job that cannot succeed, with the reason; never retried."""
        log.info("job %s failed: %s", job_id, error)
        self.jobs.update(job_id, {"status": JobStatus.FAILED, "error": error[:1000],
                                  "finished_at": utcnow()},
                         only_if_status=(JobStatus.QUEUED, JobStatus.CONVERTING))
        return JobStatus.FAILED

    def notify(self, job_id: str) -> bool:
        """Email the owner that the MP3 is ready, once; MailError propagates for a retry."""
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.DONE or job.notified_at is not None:
            return False
        owner = self.users.get(job.owner_id)
        if owner is None:
            return False
        link = f"{self.base_url}/jobs/{job.id}/mp3"
        self.mailer.send(Email(
            to=owner.email, subject=f"Your MP3 is ready: {mp3_name(job.video_filename)}",
            message_id=f"<job-{job.id}@vid2mp3>",
            body=(f"Hello {owner.name},\n\nyour MP3 of {job.video_filename} is ready.\n\n"
                  f"Job: {job.id}\nDownload: {link}\n\n"
                  "Sign in and send your access token with the request to download it.\n")))
        self.jobs.update(job_id, {"notified_at": utcnow(), "notify_error": None})
        return True

    def record_notify_failure(self, job_id: str, error: str) -> None:
        self.jobs.update(job_id, {"notify_error": error[:1000]})

    def requeue_stale(self, older_than: timedelta) -> list[str]:
        """Enqueue again jobs stuck queued or converting, and done jobs never notified."""
        cutoff = utcnow() - older_than
        requeued = []
        for job in self.jobs.stale((JobStatus.QUEUED, JobStatus.CONVERTING), cutoff):
            self.jobs.update(job.id, {})  # touch: not picked again until another deadline passes
            self.queue.enqueue_convert(job.id)
            requeued.append(job.id)
        for job in self.jobs.stale((JobStatus.DONE,), cutoff):
            if job.notified_at is None and job.notify_error is None:
                self.jobs.update(job.id, {})
                self.queue.enqueue_notify(job.id)
                requeued.append(job.id)
        return requeued

    # --- a video already in the blob store (resumable uploads) ------------------------

    def submit_stored(self, actor: Principal, filename: str | None, video_fid: str, size: int,
                      bitrate: str | None = None) -> Job:
        """Queue a job for a video already stored in the videos bucket (a finished resumable
        upload): the same checks as `submit`, and the blob is deleted when one fails."""
        original = safe_filename(filename)
        job_id = uuid.uuid4().hex
        try:
            if size > self.max_upload_bytes:
                raise TooLarge(f"uploads are limited to {self.max_upload_bytes // 2**20} MiB")
            if size <= 0:
                raise InvalidInput("the uploaded file is empty", {"fields": {"file": ["empty"]}})
            with self.blobs.open(VIDEOS, video_fid) as source:
                head = source.read(SNIFF_BYTES)
            if self.sniffer(head) is None:
                raise UnsupportedMedia("the upload is not a video or audio file")
            chosen = check_bitrate(bitrate)
            job = self.jobs.add(Job(id=job_id, owner_id=actor.user_id, status=JobStatus.QUEUED,
                                    video_fid=video_fid, video_filename=original,
                                    video_size=size, bitrate=chosen))
        except BaseException:
            self.blobs.delete(VIDEOS, video_fid)
            raise
        try:
            self.queue.enqueue_convert(job.id)
        except Exception:  # the job is safe in MySQL; the sweeper enqueues it again
            log.exception("could not enqueue job %s; it stays queued for the sweeper", job.id)
        return job


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


def _is_job_id(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{32}", value or ""))
