"""Accepting an upload: rate and quota checks, an early sniff, storage, a queued job."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping

from core.domain import (
    AudioOptions,
    InvalidInput,
    Job,
    JobStatus,
    NotFound,
    Principal,
    QuotaExceeded,
    TooLarge,
    UnsupportedMedia,
)
from core.ports import BlobStore, JobRepository, RateLimiter, Sniffer, TaskQueue
from core.services.idempotency import Fingerprint, IdempotencyKeys
from core.services.jobs import VIDEOS, safe_filename

log = logging.getLogger(__name__)
ACTIVE_RETRY_AFTER = 30


@dataclass(frozen=True)
class UploadQuotas:
    """Per-user ceilings on uploads: a rate, and what may be queued and stored at once."""

    uploads: int  # per `per_seconds`
    per_seconds: int
    active_jobs: int
    stored_bytes: int


class Intake:
    def __init__(
        self,
        jobs: JobRepository,
        blobs: BlobStore,
        queue: TaskQueue,
        sniffer: Sniffer,
        limiter: RateLimiter,
        quotas: UploadQuotas,
        max_upload_bytes: int,
        keys: IdempotencyKeys | None = None,
    ):
        self.jobs = jobs
        self.blobs = blobs
        self.queue = queue
        self.sniffer = sniffer
        self.limiter = limiter
        self.quotas = quotas
        self.max_upload_bytes = max_upload_bytes
        self.keys = keys

    def admit(self, actor: Principal, declared_bytes: int | None = None) -> int:
        """Check the caller's rate and quotas before reading a body; returns how many bytes
        this upload may have. Raises QuotaExceeded naming the limit."""
        q = self.quotas
        retry = self.limiter.hit(q.uploads, q.per_seconds, f"upload:{actor.user_id}")
        if retry:
            raise QuotaExceeded(
                f"at most {q.uploads} uploads per {q.per_seconds} s",
                "UPLOAD_RATE_LIMIT",
                q.uploads,
                q.uploads,
                429,
                retry,
            )
        return self._room(actor, declared_bytes)

    def _room(self, actor: Principal, declared_bytes: int | None) -> int:
        q = self.quotas
        active, stored = self.jobs.usage(actor.user_id)
        if active >= q.active_jobs:
            raise QuotaExceeded(
                f"at most {q.active_jobs} jobs may wait or convert at once; "
                "try again when one has finished",
                "QUOTA_ACTIVE_JOBS",
                q.active_jobs,
                active,
                429,
                ACTIVE_RETRY_AFTER,
            )
        room = q.stored_bytes - stored
        if room <= 0 or (
            declared_bytes is not None and declared_bytes > room and room < self.max_upload_bytes
        ):
            raise QuotaExceeded(
                f"your stored files would exceed {q.stored_bytes // 2**20} MiB; "
                "delete some jobs first",
                "QUOTA_STORED_MB",
                q.stored_bytes,
                stored,
            )
        return min(self.max_upload_bytes, room)

    def submit(
        self,
        actor: Principal,
        filename: str | None,
        chunks: Iterable[bytes],
        options: AudioOptions | Callable[[], AudioOptions] | None = None,
        allowed_bytes: int | None = None,
    ) -> Job:
        """Stream an upload into the blob store, record a queued job and enqueue its conversion.

        `options` may be a callable, asked once the upload is read (a form field can follow
        the file); it raises InvalidInput for a bad one."""
        if allowed_bytes is None:
            allowed_bytes = self.admit(actor)
        original = safe_filename(filename)
        job_id = uuid.uuid4().hex
        blob_fid, size = self._store(actor, job_id, original, iter(chunks), allowed_bytes)
        try:
            chosen = options() if callable(options) else options
            job = self.jobs.add(_new_job(job_id, actor, blob_fid, original, size, chosen))
        except BaseException:
            self.blobs.delete(VIDEOS, blob_fid)
            raise
        self._enqueue(job)
        return job

    def _store(
        self,
        actor: Principal,
        job_id: str,
        filename: str,
        chunks: Iterator[bytes],
        allowed_bytes: int,
    ) -> tuple[str, int]:
        wanted = self.sniffer.head_bytes
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= wanted:
                break
        if not head:
            raise InvalidInput("the uploaded file is empty", {"fields": {"file": ["empty"]}})
        if self.sniffer.sniff(head[:wanted]) is None:
            raise UnsupportedMedia("the upload is not a video or audio file we accept")
        size = 0
        with self.blobs.writer(
            VIDEOS,
            filename,
            "application/octet-stream",
            {"owner_id": actor.user_id, "job_id": job_id},
        ) as writer:
            for chunk in _prepend(head, chunks):
                size += len(chunk)
                if size > allowed_bytes:
                    raise self._too_large(allowed_bytes)
                writer.write(chunk)
        return writer.fid, size

    def _too_large(self, allowed_bytes: int) -> Exception:
        if allowed_bytes >= self.max_upload_bytes:
            return TooLarge(f"uploads are limited to {self.max_upload_bytes // 2**20} MiB")
        return QuotaExceeded(
            f"your stored files would exceed "
            f"{self.quotas.stored_bytes // 2**20} MiB; delete some jobs first",
            "QUOTA_STORED_MB",
            self.quotas.stored_bytes,
            self.quotas.stored_bytes - allowed_bytes,
        )

    def submit_stored(
        self,
        actor: Principal,
        filename: str | None,
        video_fid: str,
        size: int,
        options: AudioOptions | None = None,
    ) -> Job:
        """Queue a job for a video already in the videos bucket (a finished resumable upload):
        the same sniff, quotas and option checks as `submit`; the blob is deleted when one
        fails. The upload rate was counted when the upload was created."""
        original = safe_filename(filename)
        job_id = uuid.uuid4().hex
        try:
            if size <= 0:
                raise InvalidInput("the uploaded file is empty", {"fields": {"file": ["empty"]}})
            room = self._room(actor, size)
            if size > room:
                raise self._too_large(room)
            with self.blobs.open(VIDEOS, video_fid) as source:
                head = source.read(self.sniffer.head_bytes)
            if self.sniffer.sniff(head) is None:
                raise UnsupportedMedia("the upload is not a video or audio file we accept")
            job = self.jobs.add(_new_job(job_id, actor, video_fid, original, size, options))
        except BaseException:
            self.blobs.delete(VIDEOS, video_fid)
            raise
        self._enqueue(job)
        return job

    def _enqueue(self, job: Job) -> None:
        try:
            self.queue.enqueue_convert(job.id)
        except Exception:  # the job is safe in MySQL; the sweeper enqueues it again
            log.exception("could not enqueue job %s; it stays queued for the sweeper", job.id)

    # --- Idempotency-Key (IETF httpapi draft) ---------------------------------------------

    def submit_keyed(
        self,
        actor: Principal,
        key: str,
        filename: str | None,
        chunks: Iterable[bytes],
        options: Callable[[], AudioOptions],
        allowed_bytes: int | None = None,
    ) -> Job:
        """`submit` for the first request with a key reserved in `keys`; remembers its
        fingerprint (file content and options) and job, or releases the key when it fails."""
        assert self.keys is not None, "Intake built without IdempotencyKeys"
        try:
            fingerprint = Fingerprint()
            job = self.submit(
                actor,
                filename,
                fingerprint.feed(chunks),
                options=options,
                allowed_bytes=allowed_bytes,
            )
            self.keys.remember(actor, key, fingerprint.digest(options().to_dict()), job_id=job.id)
        except BaseException:
            self.keys.release(actor, key)
            raise
        return job

    def replay(
        self,
        actor: Principal,
        prior: Mapping[str, object],
        chunks: Iterable[bytes],
        options: Callable[[], AudioOptions],
    ) -> Job:
        """A retry of a request already answered: the same job when it is the same request
        (read, hashed, not stored), InvalidInput (422) when it differs."""
        fingerprint = Fingerprint()
        for _ in fingerprint.feed(chunks):
            pass
        IdempotencyKeys.check_same(prior, fingerprint.digest(options().to_dict()))
        job = self.jobs.get(str(prior.get("job_id")))
        if job is None or job.owner_id != actor.user_id:
            raise NotFound("the job made with this Idempotency-Key was deleted")
        return job


def _new_job(
    job_id: str,
    actor: Principal,
    video_fid: str,
    filename: str,
    size: int,
    options: AudioOptions | None,
) -> Job:
    chosen = (options or AudioOptions()).titled(filename)
    return Job(
        id=job_id,
        owner_id=actor.user_id,
        status=JobStatus.QUEUED,
        video_fid=video_fid,
        video_filename=filename,
        video_size=size,
        bitrate=chosen.label,
        options=chosen.to_dict(),
    )


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest
