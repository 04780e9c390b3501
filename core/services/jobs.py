"""Jobs as their owners see them: read, list, download and delete."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from core.domain.accounts import Principal
from core.domain.errors import Conflict, Gone, NotFound
from core.domain.files import MP3S, VIDEOS, Blob, audio_name
from core.domain.jobs import Job, JobStatus
from core.domain.values import Page, utcnow
from core.ports.files import BlobStore
from core.ports.jobs import JobRepository

if TYPE_CHECKING:
    from core.services.links import LinkSigner

log = logging.getLogger(__name__)


def is_job_id(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]{32}", value or ""))


@dataclass
class Download:
    job: Job
    blob: Blob
    filename: str
    content_type: str = "audio/mpeg"


def _download_of(job: Job, blob: Blob) -> Download:
    """The job's output as it is downloaded: its name and type follow the format."""
    fmt = job.output
    return Download(job, blob, audio_name(job.video_filename, fmt.extension), fmt.content_type)


class JobService:
    def __init__(
        self,
        jobs: JobRepository,
        blobs: BlobStore,
        links: LinkSigner | None = None,
        keep_source: bool = True,
        on_cancel: Callable[[str], None] | None = None,
        presign_seconds: int | None = None,
    ):
        self.jobs = jobs
        self.blobs = blobs
        self.links = links
        self.keep_source = keep_source
        self.on_cancel = on_cancel
        self.presign_seconds = presign_seconds  # None: downloads stream through the API

    def get(self, actor: Principal, job_id: str) -> Job:
        job = self.jobs.get(job_id) if is_job_id(job_id) else None
        if job is None or not actor.can_access(job.owner_id):
            raise NotFound("job not found")
        return job

    def list(
        self,
        actor: Principal,
        page: int,
        per_page: int,
        status: JobStatus | None = None,
        tag: str | None = None,
    ) -> Page:
        jobs, total = self.jobs.list_for_owner(
            actor.user_id, (page - 1) * per_page, per_page, status=status, tag=tag
        )
        return Page(jobs, page, per_page, total)

    def download(self, actor: Principal, job_id: str, mp3_only: bool = False) -> Download:
        """The job's output; with `mp3_only` (GET /jobs/<id>/mp3, kept for MP3 jobs), Conflict
        naming /jobs/<id>/audio when the job makes another format."""
        job = self.get(actor, job_id)
        if mp3_only and job.output.name != "mp3":
            raise Conflict(
                f"this job makes {job.output.name}, not mp3: download it from /jobs/{job.id}/audio"
            )
        return self._download(job)

    def _download(self, job: Job) -> Download:
        noun = job.output.noun
        if job.status is JobStatus.EXPIRED:
            raise Gone(f"the {noun} has expired and was deleted")
        if job.status is not JobStatus.DONE or not job.mp3_fid:
            raise NotFound(f"the {noun} is not ready")
        if self.presign_seconds is not None:
            # Redirected to the store, which answers for the object itself: no request to it
            # here (a redirect costs about what a small request does).
            return _download_of(job, Blob(fid=job.mp3_fid, size=job.mp3_size or 0))
        blob = self.blobs.stat(MP3S, job.mp3_fid)
        if blob is None:
            raise NotFound(f"the {noun} is gone")
        return _download_of(job, blob)

    def download_by_fid(self, actor: Principal, fid: str) -> Download:
        blob = self.blobs.stat(MP3S, fid) if fid else None
        job_id = str((blob.metadata or {}).get("job_id", "")) if blob else ""
        job = self.jobs.get(job_id) if is_job_id(job_id) else None
        if (
            blob is None
            or job is None
            or job.mp3_fid != fid
            or job.status is not JobStatus.DONE
            or not actor.can_access(job.owner_id)
        ):
            raise NotFound("file not found")
        return _download_of(job, blob)

    def open(self, download: Download) -> Any:
        return self.blobs.open(MP3S, download.blob.fid)

    def direct_url(self, download: Download, content_disposition: str) -> str | None:
        """Where the client may fetch an MP3 it was allowed (every check of the download is
        done by now) straight from the store, or None to stream it through the API."""
        if self.presign_seconds is None:
            return None
        return self.blobs.download_url(
            MP3S,
            download.blob.fid,
            self.presign_seconds,
            content_disposition,
            download.content_type,
        )

    def delete(self, actor: Principal, job_id: str) -> None:
        self._remove(self.get(actor, job_id))

    def cancel(self, actor: Principal, job_id: str) -> Job:
        """Stop a fetching, queued or converting job: the fetch's or conversion's lease renewal
        fails, so the download or ffmpeg is stopped and nothing is stored. Conflict when the
        job already ended."""
        job = self.get(actor, job_id)
        if not self.jobs.update(
            job.id,
            {"status": JobStatus.CANCELLED, "finished_at": utcnow()},
            only_if_status=(JobStatus.FETCHING, JobStatus.QUEUED, JobStatus.CONVERTING),
        ):
            current = self.jobs.get(job.id)
            status = current.status.value if current else "deleted"
            raise Conflict(f"the job has already ended ({status})")
        if not self.keep_source and job.video_fid:
            self.blobs.delete(VIDEOS, job.video_fid)
            self.jobs.update(job.id, {"video_fid": None})
        if self.on_cancel is not None:
            try:
                self.on_cancel(job.id)
            except Exception:  # the cancel stands; webhooks are told on a best-effort basis
                log.exception("job %s: could not queue the job.cancelled event", job.id)
        cancelled = self.jobs.get(job.id)
        if cancelled is None:
            raise NotFound("job not found")
        return cancelled

    def create_link(self, actor: Principal, job_id: str, expires_in: int) -> tuple[str, int]:
        """A URL that downloads the job's output without a token until it expires."""
        assert self.links is not None, "JobService built without a LinkSigner"
        job = self.get(actor, job_id)
        if job.status is JobStatus.EXPIRED:
            raise Gone(f"the {job.output.noun} has expired and was deleted")
        if job.status is not JobStatus.DONE or not job.mp3_fid:
            raise Conflict(f"the {job.output.noun} is not ready")
        return self.links.sign(job.id, job.mp3_fid, expires_in)

    def download_link(self, token: str) -> Download:
        """What a link downloads: NotFound when tampered with or its job was deleted, Gone when
        the link or the job expired."""
        assert self.links is not None, "JobService built without a LinkSigner"
        claim = self.links.check(token)
        job = self.jobs.get(claim.job_id)
        if job is None:
            raise NotFound("no such link")
        if job.status is not JobStatus.EXPIRED and job.mp3_fid != claim.mp3_fid:
            raise NotFound("no such link")
        return self._download(job)

    def purge_owner(self, owner_id: int) -> None:
        """Remove every job of a user with both files: run before the user is deleted."""
        for job_id in self.jobs.list_ids_for_owner(owner_id):
            job = self.jobs.get(job_id)
            if job:
                self._remove(job)

    def _remove(self, job: Job) -> None:
        self.jobs.delete(job.id)
        if job.video_fid:
            self.blobs.delete(VIDEOS, job.video_fid)
        if job.mp3_fid:
            self.blobs.delete(MP3S, job.mp3_fid)
