"""Deleting what is kept no longer: MP3s past RETENTION_SECONDS, and sources of ended jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

from core.domain.files import MP3S, VIDEOS
from core.domain.jobs import JobStatus
from core.domain.values import utcnow
from core.ports.files import BlobStore
from core.ports.jobs import JobRepository, JobSweeps

log = logging.getLogger(__name__)
# A source older than this after its job ended was left by an attempt that died between
# finishing the job and deleting the video.
SOURCE_GRACE = timedelta(minutes=5)


class Retention:
    def __init__(self, jobs: JobRepository, sweeps: JobSweeps, blobs: BlobStore, keep_source: bool):
        self.jobs = jobs
        self.sweeps = sweeps
        self.blobs = blobs
        self.keep_source = keep_source

    def purge(self) -> list[str]:
        """Expire done jobs past their expires_at and delete their files; returns the job ids.

        Idempotent and safe to stop anywhere: a job is marked expired first (its downloads
        answer 410 from then on), then its files are deleted, then their ids cleared, so a run
        stopped halfway leaves an expired job still holding ids, which the next run finishes."""
        now = utcnow()
        ended_before = None if self.keep_source else now - SOURCE_GRACE
        purged: list[str] = []
        for job in self.sweeps.purgeable(now, ended_before):
            if (
                job.status is JobStatus.DONE
                and job.expires_at is not None
                and job.expires_at.replace(tzinfo=None) < now
            ):  # naive UTC, as utcnow()
                if not self.jobs.update(
                    job.id, {"status": JobStatus.EXPIRED}, only_if_status=(JobStatus.DONE,)
                ):
                    continue  # deleted meanwhile
                job.status = JobStatus.EXPIRED
            changes: dict[str, object] = {}
            if job.status is JobStatus.EXPIRED and job.mp3_fid:
                self.blobs.delete(MP3S, job.mp3_fid)
                changes["mp3_fid"] = None
            if job.video_fid and (job.status is JobStatus.EXPIRED or not self.keep_source):
                self.blobs.delete(VIDEOS, job.video_fid)
                changes["video_fid"] = None
            if changes:
                self.jobs.update(job.id, changes)
                purged.append(job.id)
        if purged:
            log.info("retention: purged files of %d jobs", len(purged))
        return purged
