"""Accepting an upload: rate and quota checks, an early sniff, storage, a queued job."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

from core.domain.accounts import Principal
from core.domain.errors import (
    InvalidInput,
    NotFound,
    QuotaExceeded,
    TooLarge,
    Unavailable,
    UnsupportedMedia,
)
from core.domain.files import VIDEOS, safe_filename
from core.domain.jobs import Job, JobLabels, JobStatus
from core.domain.options import AudioOptions
from core.domain.values import utcnow
from core.ports.files import BlobStore
from core.ports.jobs import JobRepository, QuotaHold, QuotaHolds
from core.ports.limits import RateLimiter, Slots
from core.ports.media import Sniffer
from core.ports.queue import TaskQueue
from core.services.idempotency import Fingerprint, IdempotencyKeys

log = logging.getLogger(__name__)
ACTIVE_RETRY_AFTER = 30
# A multipart upload's hold outlives its last renewal by HOLD_SECONDS, and is renewed every
# HOLD_RENEW_SECONDS while bytes arrive: a process that dies mid-upload frees its room soon.
HOLD_SECONDS = 300
HOLD_RENEW_SECONDS = 60
SLOT_LEASE_SECONDS = 60.0  # an upload slot's lease, renewed while the body arrives
BUSY_RETRY_AFTER = 5


@dataclass(frozen=True)
class Admission:
    """An upload let in: the hold it took in its owner's quotas, and the most bytes it may
    bring."""

    hold_id: str
    allowed_bytes: int


@dataclass(frozen=True)
class UploadQuotas:
    """Per-user ceilings on uploads: a rate, what may be queued and stored at once, and how
    many uploads may be receiving at once (None: no cap)."""

    uploads: int  # per `per_seconds`
    per_seconds: int
    active_jobs: int
    stored_bytes: int
    concurrent_uploads: int | None = None


class UploadBody(Protocol):
    """An upload's body as the intake reads it: text fields (the options may be among them),
    then the file part."""

    filename: str | None

    def find_file(self) -> None:
        """Read up to the file part; InvalidInput when there is none."""

    def __iter__(self) -> Iterator[bytes]:
        """The file's bytes, then the rest of the body (later fields become known)."""


@dataclass(frozen=True)
class Received:
    """What `receive` made of a request: its job, and whether it is an earlier request's
    (an Idempotency-Key retry, which stored nothing)."""

    job: Job
    replayed: bool


class UploadsBusy(QuotaExceeded):
    """All of the caller's concurrent-upload slots are taken (429)."""


class UploadSlot:
    """One of a user's concurrent-upload slots, held for a request; `keep_alive()` renews
    its lease while the body arrives (call it as often as you like)."""

    def __init__(self, slots: Slots | None, name: str, holder: str):
        self._slots = slots
        self._name = name
        self._holder = holder
        self._renewed = time.monotonic()

    def keep_alive(self) -> None:
        if self._slots is None or time.monotonic() - self._renewed < SLOT_LEASE_SECONDS / 3:
            return
        self._renewed = time.monotonic()
        try:
            self._slots.renew([self._name], self._holder, SLOT_LEASE_SECONDS)
        except Unavailable:  # the upload goes on; at worst its slot is freed early
            log.warning("could not renew an upload slot; Redis is unavailable")

    def release(self) -> None:
        if self._slots is None:
            return
        try:
            self._slots.release([self._name], self._holder)
        except Unavailable:  # its lease frees it soon
            log.warning("could not release an upload slot; Redis is unavailable")


class Intake:
    def __init__(
        self,
        jobs: JobRepository,
        holds: QuotaHolds,
        blobs: BlobStore,
        queue: TaskQueue,
        sniffer: Sniffer,
        limiter: RateLimiter,
        quotas: UploadQuotas,
        max_upload_bytes: int,
        keys: IdempotencyKeys | None = None,
        slots: Slots | None = None,
    ):
        self.slots = slots
        self.jobs = jobs
        self.holds = holds
        self.blobs = blobs
        self.queue = queue
        self.sniffer = sniffer
        self.limiter = limiter
        self.quotas = quotas
        self.max_upload_bytes = max_upload_bytes
        self.keys = keys

    @contextmanager
    def uploading(self, actor: Principal) -> Iterator[UploadSlot]:
        """One of the caller's QUOTA_CONCURRENT_UPLOADS slots, for a request that receives an
        upload's bytes (POST /upload, a tus PATCH): no user holds more of the API's threads
        with uploads. UploadsBusy (429) when every slot is taken."""
        limit = self.quotas.concurrent_uploads
        if self.slots is None or limit is None:
            yield UploadSlot(None, "", "")
            return
        name = f"uploads:{actor.user_id}"
        holder = self.slots.acquire({name: limit}, SLOT_LEASE_SECONDS)
        if holder is None:
            raise UploadsBusy(
                f"at most {limit} uploads may be received at once; try again when one has finished",
                "QUOTA_CONCURRENT_UPLOADS",
                limit,
                limit,
                429,
                BUSY_RETRY_AFTER,
            )
        slot = UploadSlot(self.slots, name, holder)
        try:
            yield slot
        finally:
            slot.release()

    def _count_upload(self, actor: Principal) -> None:
        """One more upload against UPLOAD_RATE_LIMIT; QuotaExceeded (429) past it."""
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

    def count_upload(self, actor: Principal) -> None:
        """An import by URL counts against UPLOAD_RATE_LIMIT like an upload."""
        self._count_upload(actor)

    def add_job(self, job: Job) -> Job:
        """Record a job that holds no bytes yet (an import waiting for its fetch) within
        QUOTA_ACTIVE_JOBS; QuotaExceeded (429) when there is no room."""
        return self._add(job, None)

    def room_for(self, owner_id: int) -> int:
        """The most bytes one more video of this owner may have: MAX_UPLOAD_MB, or less when
        QUOTA_STORED_MB has less room left."""
        _, stored = self.holds.usage(owner_id, utcnow())
        return max(0, min(self.max_upload_bytes, self.quotas.stored_bytes - stored))

    def too_large(self, allowed_bytes: int) -> Exception:
        return self._too_large(allowed_bytes)

    def admit(self, actor: Principal, declared_bytes: int | None = None) -> Admission:
        """Count the upload against the caller's rate and take its room in the quotas (one
        more job, and its declared bytes or all the room left), before its body is read.
        Raises QuotaExceeded naming the limit. Release the hold if the upload fails before
        `submit`: `admitted` does."""
        self._count_upload(actor)
        if declared_bytes is None:
            _, stored = self.holds.usage(actor.user_id, utcnow())
            size = min(self.max_upload_bytes, self.quotas.stored_bytes - stored)
        else:
            size = min(self.max_upload_bytes, declared_bytes)
        hold = QuotaHold(
            uuid.uuid4().hex,
            actor.user_id,
            max(size, 0),
            jobs=1,
            expires_at=utcnow() + timedelta(seconds=HOLD_SECONDS),
        )
        self._take(hold)
        return Admission(hold.id, max(size, 0))

    @contextmanager
    def admitted(self, actor: Principal, declared_bytes: int | None = None) -> Iterator[Admission]:
        """`admit`, and the hold released when the block ends (once the job is recorded in
        its place there is nothing left to release)."""
        admission = self.admit(actor, declared_bytes)
        try:
            yield admission
        finally:
            self.holds.release_hold(admission.hold_id)

    def hold_upload(
        self, actor: Principal, upload_id: str, length: int, expires_at: datetime
    ) -> None:
        """A resumable upload's creation: count it against the rate and hold its declared
        length of QUOTA_STORED_MB until it expires (QUOTA_ACTIVE_JOBS is taken when it ends,
        but must have room for it now)."""
        self._count_upload(actor)
        self._take(QuotaHold(upload_id, actor.user_id, length, jobs=0, expires_at=expires_at))

    def extend_hold(self, hold_id: str, expires_at: datetime) -> None:
        self.holds.extend_hold(hold_id, expires_at)

    def release_hold(self, hold_id: str) -> None:
        self.holds.release_hold(hold_id)

    def _take(self, hold: QuotaHold) -> None:
        q = self.quotas
        taken, active, stored = self.holds.hold(hold, q.active_jobs, q.stored_bytes, utcnow())
        if not taken:
            raise self._over(active, stored)

    def _over(self, active: int, stored: int) -> QuotaExceeded:
        """The quota that refused an upload, with what the owner uses of it."""
        q = self.quotas
        if active + 1 > q.active_jobs:
            return QuotaExceeded(
                f"at most {q.active_jobs} jobs may wait or convert at once; "
                "try again when one has finished",
                "QUOTA_ACTIVE_JOBS",
                q.active_jobs,
                active,
                429,
                ACTIVE_RETRY_AFTER,
            )
        return QuotaExceeded(
            f"your stored files would exceed {q.stored_bytes // 2**20} MiB; "
            "delete some jobs or unfinished uploads first",
            "QUOTA_STORED_MB",
            q.stored_bytes,
            stored,
        )

    def submit(
        self,
        actor: Principal,
        filename: str | None,
        chunks: Iterable[bytes],
        options: AudioOptions | Callable[[], AudioOptions] | None = None,
        admission: Admission | None = None,
        labels: JobLabels | Callable[[], JobLabels] | None = None,
    ) -> Job:
        """Stream an upload into the blob store, record a queued job in place of the
        admission's hold and enqueue its conversion (admitted here when none is given).

        `options` may be a callable, asked once the upload is read (a form field can follow
        the file); it raises InvalidInput for a bad one."""
        if admission is None:
            with self.admitted(actor) as admitted:
                return self.submit(actor, filename, chunks, options, admitted, labels)
        original = safe_filename(filename)
        job_id = uuid.uuid4().hex
        blob_fid, size = self._store(actor, job_id, original, iter(chunks), admission)
        try:
            chosen = options() if callable(options) else options
            labelled = labels() if callable(labels) else labels
            job = self._add(
                _new_job(job_id, actor, blob_fid, original, size, chosen, labelled),
                admission.hold_id,
            )
        except BaseException:
            self.blobs.delete(VIDEOS, blob_fid)
            raise
        self._enqueue(job)
        return job

    def _add(self, job: Job, hold_id: str | None) -> Job:
        """Record the job in place of its hold, within the quotas (checked again: the hold
        may have expired); QuotaExceeded when it no longer fits."""
        q = self.quotas
        added, active, stored = self.holds.add_held(
            job, hold_id, q.active_jobs, q.stored_bytes, utcnow()
        )
        if not added:
            raise self._over(active, stored)
        recorded = self.jobs.get(job.id)
        if recorded is None:
            raise NotFound("the job was deleted as it was created")
        return recorded

    def _store(
        self,
        actor: Principal,
        job_id: str,
        filename: str,
        chunks: Iterator[bytes],
        admission: Admission,
    ) -> tuple[str, int]:
        allowed_bytes = admission.allowed_bytes
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
        renewed = time.monotonic()
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
                if time.monotonic() - renewed > HOLD_RENEW_SECONDS:
                    renewed = time.monotonic()
                    self.holds.extend_hold(
                        admission.hold_id, utcnow() + timedelta(seconds=HOLD_SECONDS)
                    )
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
        hold_id: str | None = None,
        labels: JobLabels | None = None,
    ) -> Job:
        """Queue a job for a video already in the videos bucket (a finished resumable upload)
        in place of the upload's hold: the same sniff, quotas and option checks as `submit`;
        the blob is deleted and the hold released when one fails. The upload rate was
        counted when the upload was created."""
        original = safe_filename(filename)
        job_id = uuid.uuid4().hex
        try:
            if size <= 0:
                raise InvalidInput("the uploaded file is empty", {"fields": {"file": ["empty"]}})
            with self.blobs.open(VIDEOS, video_fid) as source:
                head = source.read(self.sniffer.head_bytes)
            if self.sniffer.sniff(head) is None:
                raise UnsupportedMedia("the upload is not a video or audio file we accept")
            job = self._add(
                _new_job(job_id, actor, video_fid, original, size, options, labels), hold_id
            )
        except BaseException:
            self.blobs.delete(VIDEOS, video_fid)
            if hold_id:
                self.holds.release_hold(hold_id)
            raise
        self._enqueue(job)
        return job

    def _enqueue(self, job: Job) -> None:
        try:
            self.queue.enqueue_convert(job.id)
        except Exception:  # the job is safe in MySQL; the sweeper enqueues it again
            log.exception("could not enqueue job %s; it stays queued for the sweeper", job.id)

    # --- one request: POST /upload, with an Idempotency-Key (IETF httpapi draft) -----------

    def receive(
        self,
        actor: Principal,
        body: UploadBody,
        options: Callable[[], AudioOptions],
        key: str | None = None,
        declared_bytes: int | None = None,
        labels: Callable[[], JobLabels] | None = None,
    ) -> Received:
        """An upload sent whole in one request: admitted, stored and queued (`submit`).

        With an Idempotency-Key, a retry of the same request (same file and options) within
        a day gets the first one's job, its bytes read and hashed but not stored; another
        request with the key gets InvalidInput (422), one while the first is still being
        received Conflict (409). A request that fails frees its key for a retry."""
        if key is None:
            with self.admitted(actor, declared_bytes) as admission:
                return Received(
                    self._submit_body(actor, body, options, admission, labels=labels), False
                )
        keys = self.keys
        assert keys is not None, "Intake built without IdempotencyKeys"
        prior = keys.reserve(actor, key)
        if prior is not None:
            body.find_file()
            return Received(self._replay(actor, prior, body, options, labels), True)
        try:
            with self.admitted(actor, declared_bytes) as admission:
                fingerprint = Fingerprint()
                job = self._submit_body(actor, body, options, admission, fingerprint, labels)
                keys.remember(
                    actor, key, fingerprint.digest(_request(options, labels)), job_id=job.id
                )
        except BaseException:
            keys.release(actor, key)
            raise
        return Received(job, False)

    def _submit_body(
        self,
        actor: Principal,
        body: UploadBody,
        options: Callable[[], AudioOptions],
        admission: Admission,
        fingerprint: Fingerprint | None = None,
        labels: Callable[[], JobLabels] | None = None,
    ) -> Job:
        body.find_file()
        options()  # fail before the video is read when the fields come first
        if labels is not None:
            labels()
        chunks = fingerprint.feed(body) if fingerprint is not None else body
        return self.submit(
            actor, body.filename, chunks, options=options, admission=admission, labels=labels
        )

    def _replay(
        self,
        actor: Principal,
        prior: Mapping[str, object],
        chunks: Iterable[bytes],
        options: Callable[[], AudioOptions],
        labels: Callable[[], JobLabels] | None = None,
    ) -> Job:
        """A retry of a request already answered: the same job when it is the same request
        (read, hashed, not stored), InvalidInput (422) when it differs."""
        fingerprint = Fingerprint()
        for _ in fingerprint.feed(chunks):
            pass
        IdempotencyKeys.check_same(prior, fingerprint.digest(_request(options, labels)))
        job = self.jobs.get(str(prior.get("job_id")))
        if job is None or job.owner_id != actor.user_id:
            raise NotFound("the job made with this Idempotency-Key was deleted")
        return job


def _fingerprinted(options: AudioOptions) -> dict[str, Any]:
    """The options as an upload's fingerprint holds them: the default format left out, so a
    retry of a key remembered before formats existed still matches."""
    chosen = options.to_dict()
    if chosen.get("format") == "mp3":
        del chosen["format"]
    return chosen


def _new_job(
    job_id: str,
    actor: Principal,
    video_fid: str,
    filename: str,
    size: int,
    options: AudioOptions | None,
    labels: JobLabels | None = None,
) -> Job:
    chosen = (options or AudioOptions()).titled(filename)
    labels = labels or JobLabels()
    return Job(
        id=job_id,
        owner_id=actor.user_id,
        status=JobStatus.QUEUED,
        video_fid=video_fid,
        video_filename=filename,
        video_size=size,
        bitrate=chosen.label,
        options=chosen.to_dict(),
        tag=labels.tag,
        webhook_url=labels.webhook_url,
    )


def _request(
    options: Callable[[], AudioOptions], labels: Callable[[], JobLabels] | None
) -> dict[str, object]:
    """What an Idempotency-Key's retry must repeat besides the bytes: the options, and the
    labels when any was given (so fingerprints made before labels existed still match)."""
    given = labels().to_dict() if labels is not None else {}
    return {**_fingerprinted(options()), **given}


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest
