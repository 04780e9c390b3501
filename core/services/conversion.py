"""Converting a job: one owner at a time through a lease, renewed by a heartbeat."""

from __future__ import annotations

import enum
import logging
import os
import threading
import uuid
from datetime import datetime, timedelta

from core.domain.errors import MediaError, NotFound, Stopped, Unavailable
from core.domain.files import MP3S, VIDEOS, audio_name
from core.domain.jobs import JobStatus
from core.domain.media import Encoded
from core.domain.options import AudioOptions
from core.domain.values import utcnow
from core.ports.files import BlobStore, ScratchSpace
from core.ports.jobs import AttemptHolders, EmailClaims, JobLeases, JobRepository
from core.ports.media import Transcoder
from core.ports.queue import TaskQueue
from core.services.notification import queue_email

log = logging.getLogger(__name__)
CANCEL_CHECK_SECONDS = 0.5  # a cancelled job's ffmpeg stops within about twice this
# How long a queued email is claimed for its message; after that the sweeper queues another.
QUEUED_EMAIL = timedelta(minutes=5)


class Outcome(str, enum.Enum):
    DONE = "done"
    FAILED = "failed"
    LEASED = "leased"  # another attempt holds the job: try again after its lease could expire
    LOST = "lost"  # this attempt lost its lease midway; the new holder carries on
    GONE = "gone"  # deleted, or already finished


class Lease:
    """This attempt's claim on a job, renewed in the background until released."""

    def __init__(
        self,
        leases: JobLeases,
        job_id: str,
        seconds: int,
        check_every: float = CANCEL_CHECK_SECONDS,
    ):
        self.leases = leases
        self.job_id = job_id
        self.id = uuid.uuid4().hex
        self.seconds = seconds
        # Renewal fails once the job is cancelled: renewing this often stops ffmpeg quickly.
        self.period = min(seconds / 3, check_every)
        self.lost = threading.Event()
        self._released = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self, holder: str | None = None) -> bool:
        now = utcnow()
        expires = now + timedelta(seconds=self.seconds)
        return self.leases.claim(self.job_id, self.id, expires, now, holder)

    def take_over(self, dead_lease_id: str, holder: str | None = None) -> bool:
        expires = utcnow() + timedelta(seconds=self.seconds)
        return self.leases.take_over(self.job_id, dead_lease_id, self.id, expires, holder)

    def __enter__(self) -> "Lease":
        self._thread = threading.Thread(
            target=self._heartbeat, daemon=True, name=f"lease-{self.job_id[:8]}"
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        if self._thread is not None:
            self._thread.join()

    def _heartbeat(self) -> None:
        valid_until = utcnow() + timedelta(seconds=self.seconds)
        while not self._released.wait(self.period):
            try:
                renewed_until = utcnow() + timedelta(seconds=self.seconds)
                if not self.leases.renew(self.job_id, self.id, renewed_until):
                    log.warning("job %s: lease %s lost", self.job_id, self.id)
                    self.lost.set()
                    return
                valid_until = renewed_until
            except Unavailable:
                if utcnow() >= valid_until:  # cannot prove we still own it: stop writing
                    log.warning(
                        "job %s: lease %s expired while MySQL was down", self.job_id, self.id
                    )
                    self.lost.set()
                    return

    def update(self, changes: dict[str, object]) -> bool:
        """Write to the job only while this attempt holds it."""
        return not self.lost.is_set() and self.leases.update_leased(self.job_id, self.id, changes)


class Conversion:
    def __init__(
        self,
        jobs: JobRepository,
        leases: JobLeases,
        claims: EmailClaims,
        blobs: BlobStore,
        queue: TaskQueue,
        transcoder: Transcoder,
        scratch: ScratchSpace,
        lease_seconds: int,
        retention: timedelta | None = None,
        keep_source: bool = True,
        holders: AttemptHolders | None = None,
    ):
        self.jobs = jobs
        self.leases = leases
        self.claims = claims
        self.blobs = blobs
        self.queue = queue
        self.transcoder = transcoder
        self.scratch = scratch
        self.lease_seconds = lease_seconds
        self.retention = retention
        self.keep_source = keep_source
        self.holders = holders

    def convert(self, job_id: str) -> Outcome:
        """Turn the job's video into its audio format, if no other attempt holds it. Media
        errors fail the job once; outages (Unavailable) propagate for a retry."""
        job = self.jobs.get(job_id)
        if job is not None and job.status is JobStatus.FETCHING:
            return Outcome.GONE  # its fetch queues the conversion once the video is in
        if job is None or not job.active:
            if (
                job
                and job.status is JobStatus.DONE
                and job.notified_at is None
                and job.notify_error is None
            ):
                # The attempt that finished it may have died before queueing the event and
                # the email: emitting again sends nothing twice, and the email is claimed by
                # its sender, so a notify racing the first one's sends nothing either.
                self._event(job_id, "job.succeeded")
                queue_email(self.claims, self.queue, job_id, QUEUED_EMAIL)
            return Outcome.GONE
        lease = Lease(self.leases, job_id, self.lease_seconds)
        holder = self.holders.current() if self.holders else None
        if not lease.claim(holder) and not self._take_over_from_the_dead(lease, holder):
            current = self.jobs.get(job_id)
            return Outcome.LEASED if current and current.active else Outcome.GONE
        with lease, self.scratch.attempt(job_id, lease.id) as workdir:
            try:
                return self._run(job_id, lease, workdir)
            except Stopped:
                return Outcome.LOST

    def _take_over_from_the_dead(self, lease: Lease, holder: str | None) -> bool:
        """The job's lease belongs to a process known to be gone (a SIGKILLed pool process on
        this host): take it now rather than when the lease runs out."""
        current = self.jobs.get(lease.job_id)
        if (
            self.holders is None
            or current is None
            or current.status is not JobStatus.CONVERTING
            or not current.lease_id
            or not current.lease_holder
            or not self.holders.is_gone(current.lease_holder)
        ):
            return False
        if not lease.take_over(current.lease_id, holder):
            return False
        log.info("job %s: took over from %s, which is gone", lease.job_id, current.lease_holder)
        return True

    def _run(self, job_id: str, lease: Lease, workdir: str) -> Outcome:
        job = self.jobs.get(job_id)
        if job is None:
            return Outcome.GONE
        if job.video_fid is None:
            return self._fail(lease, MediaError(MediaError.MISSING))
        options = (
            AudioOptions.from_dict(job.options)
            if job.options
            else AudioOptions(bitrate=job.bitrate)
        )  # a job queued before options existed
        output = os.path.join(workdir, f"out.{options.output.extension}")
        try:
            with self.blobs.local_path(VIDEOS, job.video_fid, workdir) as source:
                # Without a prior probe: a plain conversion is one ffmpeg run.
                result = self.transcoder.encode_audio(
                    source,
                    output,
                    options,
                    None,
                    on_progress=lambda pct: self._progress(lease, pct),
                    should_stop=lease.lost.is_set,
                )
        except NotFound:
            return self._fail(lease, MediaError(MediaError.MISSING))
        except MediaError as exc:
            return self._fail(lease, exc)
        if lease.lost.is_set():
            return Outcome.LOST
        with (
            open(output, "rb") as fh,
            self.blobs.writer(
                MP3S,
                audio_name(job.video_filename, options.output.extension),
                options.output.content_type,
                {"owner_id": job.owner_id, "job_id": job_id},
            ) as writer,
        ):
            while chunk := fh.read(1 << 20):
                writer.write(chunk)
        now = utcnow()
        try:
            finished = self._record_done(lease, writer.fid, output, result, now)
        except BaseException:
            # MySQL went away between the MP3's storing and its recording (a partition): the
            # retry stores another, so this one, which no job points at, goes.
            self._discard(writer.fid)
            raise
        if not finished:  # deleted or cancelled meanwhile, or the lease passed to another attempt
            self.blobs.delete(MP3S, writer.fid)
            return Outcome.LOST
        self._drop_source(job_id, job.video_fid)
        self._event(job_id, "job.succeeded")
        queue_email(self.claims, self.queue, job_id, QUEUED_EMAIL)
        return Outcome.DONE

    def _record_done(
        self, lease: Lease, mp3_fid: str, output: str, result: Encoded, now: datetime
    ) -> bool:
        return lease.update(
            {
                "status": JobStatus.DONE,
                "progress": 100.0,
                "mp3_fid": mp3_fid,
                "mp3_size": os.path.getsize(output),
                "duration_s": result.duration,
                "finished_at": now,
                "mode": result.mode,
                "notes": list(result.notes),
                "source": result.source.to_dict() if result.source else None,
                "error": None,
                "expires_at": now + self.retention if self.retention else None,
            }
        )

    def _discard(self, mp3_fid: str) -> None:
        try:
            self.blobs.delete(MP3S, mp3_fid)
        except Exception:  # the store is out too: the file stays, with no job pointing at it
            log.warning("could not delete the unrecorded MP3 %s", mp3_fid, exc_info=True)

    def _event(self, job_id: str, event: str) -> None:
        try:
            self.queue.enqueue_event(job_id, event)
        except Exception:  # a webhook problem never fails a conversion
            log.exception("job %s: could not queue the %s event", job_id, event)

    def _drop_source(self, job_id: str, video_fid: str | None) -> None:
        """The job ended: its video is no longer needed unless KEEP_SOURCE. A crash between
        the two steps leaves a job the retention purge finishes."""
        if self.keep_source or not video_fid:
            return
        self.blobs.delete(VIDEOS, video_fid)
        self.jobs.update(job_id, {"video_fid": None})

    def _progress(self, lease: Lease, percent: float) -> None:
        lease.update({"progress": round(min(max(percent, 0.0), 99.9), 1)})

    def _fail(self, lease: Lease, error: MediaError) -> Outcome:
        log.info("job %s failed: %s (%s)", lease.job_id, error.reason, error.detail)
        if lease.update(
            {"status": JobStatus.FAILED, "error": error.reason, "finished_at": utcnow()}
        ):
            job = self.jobs.get(lease.job_id)
            if job is not None:
                self._drop_source(job.id, job.video_fid)
            self._event(lease.job_id, "job.failed")
            return Outcome.FAILED
        return Outcome.LOST

    def fail(self, job_id: str, reason: str) -> None:
        """End a job that cannot succeed (the task's time limit), whoever holds it."""
        log.info("job %s failed: %s", job_id, reason)
        if self.jobs.update(
            job_id,
            {"status": JobStatus.FAILED, "error": reason, "finished_at": utcnow()},
            only_if_status=(JobStatus.QUEUED, JobStatus.CONVERTING),
        ):
            self._event(job_id, "job.failed")
