"""Import by URL (POST /jobs): a job that waits in status `fetching` while a fetch worker
downloads its video into the blob store, then is queued for conversion like an upload."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import unquote, urlsplit

from core.domain.accounts import Principal
from core.domain.errors import InvalidInput, NotFound, QuotaExceeded, Stopped, TooLarge
from core.domain.files import VIDEOS, safe_filename
from core.domain.jobs import Job, JobLabels, JobStatus
from core.domain.options import AudioOptions
from core.domain.values import utcnow
from core.ports.files import BlobStore
from core.ports.imports import Fetcher, FetchError
from core.ports.jobs import AttemptHolders, JobLeases, JobRepository
from core.ports.media import Sniffer
from core.ports.queue import TaskQueue
from core.services.conversion import Lease, Outcome
from core.services.idempotency import Fingerprint, IdempotencyKeys
from core.services.intake import Intake, Received

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 0.5  # a fetching job's bytes so far are written this often


@dataclass(frozen=True)
class ImportRequest:
    """What POST /jobs asks for: the URL, the audio options, the owner's tag and webhook."""

    url: str
    options: AudioOptions
    labels: JobLabels = JobLabels()

    def fingerprint(self) -> str:
        """What a retry with the same Idempotency-Key must repeat."""
        return Fingerprint().digest(
            {
                "url": self.url,
                "options": self.options.to_dict(),
                **self.labels.to_dict(),
            }
        )


class Imports:
    def __init__(
        self,
        jobs: JobRepository,
        leases: JobLeases,
        blobs: BlobStore,
        queue: TaskQueue,
        sniffer: Sniffer,
        fetcher: Fetcher,
        intake: Intake,
        lease_seconds: int,
        keys: IdempotencyKeys | None = None,
        holders: AttemptHolders | None = None,
    ):
        self.jobs = jobs
        self.leases = leases
        self.blobs = blobs
        self.queue = queue
        self.sniffer = sniffer
        self.fetcher = fetcher
        self.intake = intake
        self.lease_seconds = lease_seconds
        self.keys = keys
        self.holders = holders

    # --- the request: POST /jobs ------------------------------------------------------------

    def accept(self, actor: Principal, request: ImportRequest, key: str | None = None) -> Received:
        """Record a fetching job and queue its fetch, counted against the upload rate and
        QUOTA_ACTIVE_JOBS. With an Idempotency-Key, a retry of the same request within a day
        gets the first one's job; another request with the key gets InvalidInput (422)."""
        try:
            self.fetcher.check(request.url)
        except FetchError as exc:
            raise InvalidInput(exc.message, {"fields": {"url": [exc.message]}}) from None
        if key is None:
            return Received(self._create(actor, request), False)
        keys = self.keys
        assert keys is not None, "Imports built without IdempotencyKeys"
        prior = keys.reserve(actor, key)
        if prior is not None:
            IdempotencyKeys.check_same(prior, request.fingerprint())
            job = self.jobs.get(str(prior.get("job_id")))
            if job is None or job.owner_id != actor.user_id:
                raise NotFound("the job made with this Idempotency-Key was deleted")
            return Received(job, True)
        try:
            job = self._create(actor, request)
            keys.remember(actor, key, request.fingerprint(), job_id=job.id)
        except BaseException:
            keys.release(actor, key)
            raise
        return Received(job, False)

    def _create(self, actor: Principal, request: ImportRequest) -> Job:
        self.intake.count_upload(actor)
        filename = safe_filename(_name_in(request.url) or "import")
        chosen = request.options.titled(filename)
        job = self.intake.add_job(
            Job(
                id=uuid.uuid4().hex,
                owner_id=actor.user_id,
                status=JobStatus.FETCHING,
                video_fid=None,
                video_filename=filename,
                video_size=0,
                bitrate=chosen.label,
                options=chosen.to_dict(),
                source_url=request.url,
                tag=request.labels.tag,
                webhook_url=request.labels.webhook_url,
            )
        )
        try:
            self.queue.enqueue_fetch(job.id)
        except Exception:  # the job is safe in MySQL; the sweeper enqueues it again
            log.exception("could not enqueue the fetch of job %s; the sweeper will", job.id)
        return job

    # --- the fetch worker -------------------------------------------------------------------

    def fetch(self, job_id: str) -> Outcome:
        """Download the job's video into the blob store under a lease, then queue its
        conversion; a fetch that cannot succeed fails the job saying why (FetchError's code).
        Outages (Unavailable) propagate for a retry."""
        job = self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.FETCHING or not job.source_url:
            return Outcome.GONE
        lease = Lease(self.leases, job_id, self.lease_seconds)
        holder = self.holders.current() if self.holders else None
        if not lease.claim(holder) and not self._take_over_from_the_dead(lease, holder):
            current = self.jobs.get(job_id)
            if current is not None and current.status is JobStatus.FETCHING:
                return Outcome.LEASED
            return Outcome.GONE
        with lease:
            try:
                return self._download(job, lease)
            except Stopped:
                return Outcome.LOST

    def _take_over_from_the_dead(self, lease: Lease, holder: str | None) -> bool:
        current = self.jobs.get(lease.job_id)
        if (
            self.holders is None
            or current is None
            or current.status is not JobStatus.FETCHING
            or not current.lease_id
            or not current.lease_holder
            or not self.holders.is_gone(current.lease_holder)
        ):
            return False
        if not lease.take_over(current.lease_id, holder):
            return False
        log.info(
            "job %s: fetch taken over from %s, which is gone", lease.job_id, current.lease_holder
        )
        return True

    def _download(self, job: Job, lease: Lease) -> Outcome:
        assert job.source_url is not None
        allowed = self.intake.room_for(job.owner_id)
        fid: str | None = None
        try:
            with self.fetcher.open(job.source_url) as body:
                if body.total is not None and body.total > allowed:
                    raise self._too_large(allowed)
                lease.update({"fetch_total": body.total})
                fid, size = self._store(job, lease, body.chunks, body.total, allowed)
        except FetchError as exc:
            return self._fail(lease, exc)
        except (TooLarge, QuotaExceeded) as exc:
            return self._fail(lease, FetchError(FetchError.TOO_LARGE, exc.message))
        if not lease.update(
            {
                "status": JobStatus.QUEUED,
                "video_fid": fid,
                "video_size": size,
                "fetched_bytes": size,
                "progress": 0.0,
            }
        ):  # cancelled or deleted meanwhile, or another attempt holds it now
            self.blobs.delete(VIDEOS, fid)
            return Outcome.LOST
        try:
            self.queue.enqueue_convert(job.id)
        except Exception:  # queued in MySQL: the sweeper enqueues it again
            log.exception("could not enqueue job %s; it stays queued for the sweeper", job.id)
        return Outcome.DONE

    def _too_large(self, allowed: int) -> FetchError:
        exc = self.intake.too_large(allowed)
        return FetchError(FetchError.TOO_LARGE, getattr(exc, "message", str(exc)))

    def _store(
        self,
        job: Job,
        lease: Lease,
        chunks: Iterator[bytes],
        total: int | None,
        allowed: int,
    ) -> tuple[str, int]:
        """The body into the videos bucket, sniffed first and counted against `allowed` as it
        arrives; the blob is deleted on every failure, this attempt's loss included."""
        wanted = self.sniffer.head_bytes
        progress = _Progress(lease, total)
        head = b""
        for chunk in chunks:
            head += chunk
            progress.saw(len(head))
            if len(head) >= wanted:
                break
        if not head:
            raise FetchError(FetchError.NOT_MEDIA, "the server sent an empty body")
        if len(head) > allowed:
            raise self._too_large(allowed)
        if self.sniffer.sniff(head[:wanted]) is None:
            raise FetchError(
                FetchError.NOT_MEDIA, "the URL's content is not a video or audio file we accept"
            )
        size = 0
        # The writer publishes the blob only on a clean exit: a failure leaves nothing.
        with self.blobs.writer(
            VIDEOS,
            job.video_filename,
            "application/octet-stream",
            {"owner_id": job.owner_id, "job_id": job.id},
        ) as writer:
            for chunk in _prepend(head, chunks):
                size += len(chunk)
                if size > allowed:
                    raise self._too_large(allowed)
                writer.write(chunk)
                progress.saw(size)
        return writer.fid, size

    def _fail(self, lease: Lease, error: FetchError) -> Outcome:
        log.info("job %s: fetch failed: %s", lease.job_id, error)
        if lease.update({"status": JobStatus.FAILED, "error": str(error), "finished_at": utcnow()}):
            try:
                self.queue.enqueue_event(lease.job_id, "job.failed")
            except Exception:  # the sweeper emits events it finds unannounced
                log.exception("could not enqueue the event of job %s", lease.job_id)
            return Outcome.FAILED
        return Outcome.LOST

    def fail(self, job_id: str, error: FetchError) -> None:
        """End a fetch that cannot succeed (the task's time limit), whoever holds it."""
        if self.jobs.update(
            job_id,
            {"status": JobStatus.FAILED, "error": str(error), "finished_at": utcnow()},
            only_if_status=(JobStatus.FETCHING,),
        ):
            self.queue.enqueue_event(job_id, "job.failed")


class _Progress:
    """Writes a fetch's bytes so far to its job every PROGRESS_EVERY_SECONDS; Stopped once the
    lease is lost (cancelled, deleted, or taken by another attempt)."""

    def __init__(self, lease: Lease, total: int | None):
        self.lease = lease
        self.total = total
        self.reported = time.monotonic()

    def saw(self, size: int) -> None:
        if self.lease.lost.is_set():
            raise Stopped()
        if time.monotonic() - self.reported >= PROGRESS_EVERY_SECONDS:
            self.reported = time.monotonic()
            self.lease.update({"fetched_bytes": size, "progress": _percent(size, self.total)})


def _percent(done: int, total: int | None) -> float:
    if not total:
        return 0.0
    return round(min(99.9, 100.0 * done / total), 1)


def _name_in(url: str) -> str:
    try:
        return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    except ValueError:
        return ""


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


__all__ = ["ImportRequest", "Imports", "Outcome", "Received"]
