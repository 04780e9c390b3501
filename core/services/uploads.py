"""Resumable uploads (tus 1.0.0): create, append at an offset, finish into a job, expire."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Protocol

from core.domain.accounts import Principal
from core.domain.errors import ChecksumMismatch, Conflict, Gone, InvalidInput, NotFound, TooLarge
from core.domain.files import VIDEOS, safe_filename
from core.domain.jobs import LABELS, Job, JobLabels, Upload
from core.domain.options import AudioOptions
from core.ports.uploads import PartialAppender, PartialUploadStore, UploadRepository
from core.services.idempotency import Fingerprint, IdempotencyKeys

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-with-upload", "termination", "expiration", "checksum")
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
LEASE_SECONDS = 60.0  # a PATCH renews its lease while bytes keep coming
RENEW_EVERY_BYTES = 8 << 20
ORPHAN_MARGIN = timedelta(hours=1)

# The conversion options a client may send in Upload-Metadata: the fields of POST /upload,
# checked by the same parser.
OPTIONS = AudioOptions.NAMES


def parse_options(metadata: dict[str, str]) -> dict[str, str]:
    """The conversion options present in metadata, validated (InvalidInput names each bad
    one) and kept as given, to be parsed again when the upload finishes."""
    given = {name: metadata[name] for name in OPTIONS if name in metadata}
    AudioOptions.parse(given)
    labels = {name: metadata[name] for name in LABELS if name in metadata}
    JobLabels.parse(labels)
    return {**given, **labels}


def parse_checksum(header: str) -> tuple[str, bytes]:
    """`<algorithm> <base64 digest>` from Upload-Checksum; InvalidInput when malformed."""
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidInput(
            f"unsupported checksum algorithm; use one of {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        return algorithm, base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("Upload-Checksum is not base64") from None


class JobSubmitter(Protocol):
    """What the uploads need of the intake: the rate and the quota hold of a creation, and
    the job at the end (Intake implements it)."""

    def hold_upload(
        self, actor: Principal, upload_id: str, length: int, expires_at: datetime
    ) -> None: ...

    def extend_hold(self, hold_id: str, expires_at: datetime) -> None: ...

    def release_hold(self, hold_id: str) -> None: ...

    def submit_stored(
        self,
        actor: Principal,
        filename: str | None,
        video_fid: str,
        size: int,
        options: AudioOptions | None = None,
        hold_id: str | None = None,
        labels: JobLabels | None = None,
    ) -> Job: ...


@dataclass
class Created:
    upload: Upload
    replayed: bool  # an Idempotency-Key retry: the upload an earlier creation made


@dataclass
class AppendResult:
    upload: Upload
    finished: bool


class ResumableUploads:
    def __init__(
        self,
        repo: UploadRepository,
        store: PartialUploadStore,
        jobs: JobSubmitter,
        max_length: int,
        expires_seconds: int,
        clock: Callable[[], float] = time.time,
        keys: IdempotencyKeys | None = None,
    ):
        self.repo = repo
        self.store = store
        self.jobs = jobs
        self.max_length = max_length
        self.expires_seconds = expires_seconds
        self.clock = clock
        self.keys = keys

    def create(
        self, actor: Principal, length: int, metadata: dict[str, str], key: str | None = None
    ) -> Created:
        """Register an upload of length bytes, counted against the caller's upload rate and
        quotas like POST /upload; 413 over the ceiling, 422 for a bad option.

        With an Idempotency-Key, a retry of the same creation (same length and metadata)
        returns the upload the first one made, however far it got; another creation with
        the key gets 422, and one while the first is still answered 409."""
        if key is None:
            return Created(self._create(actor, length, metadata), replayed=False)
        assert self.keys is not None, "ResumableUploads built without IdempotencyKeys"
        fingerprint = _fingerprint(length, metadata)
        prior = self.keys.reserve(actor, key)
        if prior is not None:
            self.keys.check_same(prior, fingerprint)
            try:
                return Created(self.get(actor, str(prior.get("upload_id"))), replayed=True)
            except NotFound:
                raise NotFound("the upload made with this Idempotency-Key was deleted") from None
        try:
            upload = self._create(actor, length, metadata)
            self.keys.remember(actor, key, fingerprint, upload_id=upload.id)
        except BaseException:
            self.keys.release(actor, key)
            raise
        return Created(upload, replayed=False)

    def _create(self, actor: Principal, length: int, metadata: dict[str, str]) -> Upload:
        if length > self.max_length:
            raise TooLarge(f"uploads are limited to {self.max_length // 2**20} MiB")
        if length <= 0:
            raise InvalidInput("the upload is empty", {"fields": {"Upload-Length": ["empty"]}})
        options = parse_options(metadata)
        upload_id = uuid.uuid4().hex
        expires_at = self.clock() + self.expires_seconds
        # The declared length is held in QUOTA_STORED_MB until the upload ends or expires.
        self.jobs.hold_upload(actor, upload_id, length, _utc(expires_at))
        try:
            filename = safe_filename(metadata.get("filename") or metadata.get("name"))
            upload = Upload(
                id=upload_id,
                owner_id=actor.user_id,
                length=length,
                offset=0,
                handle=self.store.create(VIDEOS),
                filename=filename,
                options=options,
                expires_at=expires_at,
            )
            try:
                self.repo.add(upload)
            except BaseException:
                self.store.delete(upload.handle)
                raise
        except BaseException:
            self.jobs.release_hold(upload_id)
            raise
        return upload

    def get(self, actor: Principal, upload_id: str) -> Upload:
        """The caller's own upload; 404 for anyone else's, 410 once it has expired."""
        upload = self.repo.get(upload_id) if _is_upload_id(upload_id) else None
        if upload is None or upload.owner_id != actor.user_id:
            raise NotFound("upload not found")
        if upload.job_id is None and upload.expires_at <= self.clock():
            raise Gone("the upload expired")
        return upload

    def append(
        self,
        actor: Principal,
        upload_id: str,
        offset: int,
        chunks: Iterable[bytes],
        content_length: int | None = None,
        checksum: tuple[str, bytes] | None = None,
    ) -> AppendResult:
        """Store the body at offset. What arrives before a dropped connection is kept, unless
        a checksum was given (then the whole body must arrive and match, or nothing is kept).
        The last byte turns the upload into a queued job."""
        upload = self.get(actor, upload_id)
        if upload.job_id is not None and offset == upload.length:
            return AppendResult(upload, True)
        with self.repo.lock(upload_id, LEASE_SECONDS) as lease:
            if lease is None:
                raise Conflict("another request is writing to this upload")
            upload = self.get(actor, upload_id)  # as it is now that we hold the lease
            if offset != upload.offset or upload.job_id is not None:
                raise Conflict(
                    f"Upload-Offset is {upload.offset}, not {offset}", {"offset": upload.offset}
                )
            room = upload.length - offset
            if content_length is not None and content_length > room:
                raise TooLarge(f"the body goes past Upload-Length ({room} bytes left)")
            self._write(upload, lease, chunks, room, checksum)
            if upload.offset < upload.length:
                return AppendResult(upload, False)
            self._finish(actor, upload)
            return AppendResult(upload, True)

    def _write(
        self,
        upload: Upload,
        lease: Any,
        chunks: Iterable[bytes],
        room: int,
        checksum: tuple[str, bytes] | None,
    ) -> None:
        digest = hashlib.new(checksum[0]) if checksum else None
        start, complete, mismatch = upload.offset, False, False
        sink: PartialAppender | None = None
        try:
            with self.store.appender(upload.handle, start) as sink:
                since_renewal = 0
                for chunk in chunks:
                    if sink.size + len(chunk) > room:
                        raise TooLarge(f"the body goes past Upload-Length ({room} bytes left)")
                    sink.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    since_renewal += len(chunk)
                    if since_renewal >= RENEW_EVERY_BYTES:
                        lease.renew()
                        since_renewal = 0
                complete = True
        finally:
            # Runs however the body ended, a dropped connection included: record what was
            # stored, unless a checksum cannot vouch for it.
            stored = sink.size if sink is not None else 0
            kept = stored
            if checksum is not None and digest is not None:
                mismatch = complete and digest.digest() != checksum[1]
                if mismatch or not complete:
                    kept = 0
            if kept != stored:
                self.store.truncate(upload.handle, start)
            upload.offset = start + kept
            upload.expires_at = self.clock() + self.expires_seconds
            self.repo.update(upload.id, {"offset": upload.offset, "expires_at": upload.expires_at})
            self.jobs.extend_hold(upload.id, _utc(upload.expires_at))
        if mismatch:
            raise ChecksumMismatch("the body does not match Upload-Checksum; nothing was kept")

    def _finish(self, actor: Principal, upload: Upload) -> None:
        blob = self.store.finish(
            upload.handle,
            upload.filename,
            "application/octet-stream",
            {"owner_id": actor.user_id, "upload_id": upload.id},
        )
        try:
            job = self.jobs.submit_stored(
                actor,
                upload.filename,
                blob.fid,
                blob.size,
                AudioOptions.parse(upload.options),
                hold_id=upload.id,
                labels=JobLabels.parse(upload.options),
            )
        except BaseException:
            self.repo.delete(upload.id)  # submit_stored removed the video and the hold
            raise
        upload.job_id = job.id
        self.repo.update(upload.id, {"job_id": job.id})

    def terminate(self, actor: Principal, upload_id: str) -> None:
        """Delete an upload and its bytes (a finished upload's job stays)."""
        upload = self.get(actor, upload_id)
        with self.repo.lock(upload_id, LEASE_SECONDS) as lease:
            if lease is None:
                raise Conflict("another request is writing to this upload")
            if upload.job_id is None:
                self.store.delete(upload.handle)
                self.jobs.release_hold(upload_id)
            self.repo.delete(upload_id)

    def purge_expired(self) -> int:
        """Remove expired uploads with their bytes, and bytes no upload refers to any more."""
        now = self.clock()
        purged = 0
        for upload_id in self.repo.expired(now):
            with self.repo.lock(upload_id, LEASE_SECONDS) as lease:
                if lease is None:
                    continue  # being written to right now: not expired after all
                upload = self.repo.get(upload_id)
                if upload is not None and upload.expires_at > now:
                    continue
                if upload is not None and upload.job_id is None:
                    self.store.delete(upload.handle)
                    self.jobs.release_hold(upload_id)
                self.repo.delete(upload_id)
                purged += 1
        cutoff = (
            datetime.fromtimestamp(now, timezone.utc).replace(tzinfo=None)
            - timedelta(seconds=self.expires_seconds)
            - ORPHAN_MARGIN
        )
        for handle in self.store.stale(cutoff):
            log.info("removing orphaned partial upload %s", handle)
            purged += self.store.delete(handle)
        return purged


def _utc(epoch: float) -> datetime:
    """Epoch seconds as the naive UTC datetime the repositories store."""
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def _fingerprint(length: int, metadata: dict[str, str]) -> str:
    """What identifies a creation: the declared length and the metadata (file name and
    options). The bytes come later, in PATCHes, so they cannot be part of it."""
    fingerprint = Fingerprint()
    fingerprint.feed_bytes(f"tus {length}".encode())
    return fingerprint.digest(metadata)


def _is_upload_id(value: str) -> bool:
    return len(value or "") == 32 and all(ch in "0123456789abcdef" for ch in value)
