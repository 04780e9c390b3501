"""In-memory fakes of the ports, for unit tests of the services only (the unit tier passes
them to the same Container production builds)."""

from __future__ import annotations

import io
import itertools
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from core.domain.accounts import NewUser, User
from core.domain.api_keys import ApiKey, KeyHolder
from core.domain.errors import Conflict, MediaError, NotFound, Stopped, Unavailable
from core.domain.files import Blob
from core.domain.jobs import Job, JobStatus, Upload
from core.domain.media import Encoded, MediaInfo
from core.domain.upload_links import UploadLink
from core.domain.values import Email
from core.ports.accounts import USER_FIELDS_UPDATABLE, KnownAddresses, TokenStates, UserRepository
from core.ports.api_keys import ApiKeyRepository
from core.ports.events import JobEventFeed, JobEventSink
from core.ports.files import BlobStore, ScratchSpace
from core.ports.items import ItemPut, ItemStore
from core.ports.jobs import (
    JOB_FIELDS_NOT_UPDATABLE,
    AttemptHolders,
    EmailClaims,
    JobLeases,
    JobRepository,
    JobSweeps,
    QuotaHold,
    QuotaHolds,
)
from core.ports.limits import IdempotencyStore, RateLimiter, Slots
from core.ports.mail import Mailer, MailError
from core.ports.media import Sniffer, Transcoder
from core.ports.metrics import NullMetrics
from core.ports.queue import TaskQueue
from core.ports.upload_links import UploadLinkRepository
from core.ports.uploads import PartialUploadStore, UploadRepository
from core.ports.webhooks import WebhookRepository

# The key the unit tier signs access tokens with.
SECRET = "unit-test-secret-" + "y" * 32


class FakeUsers(UserRepository):
    def __init__(self):
        self.rows: dict[int, User] = {}
        self._ids = itertools.count(1)

    def add(self, user: NewUser) -> User:
        if any(u.name == user.name for u in self.rows.values()):
            raise Conflict("that name is taken")
        if any(u.email == user.email for u in self.rows.values()):
            raise Conflict("that email is taken")
        new = User(
            id=next(self._ids),
            name=user.name,
            email=user.email,
            phone=user.phone,
            role=user.role,
            password_hash=user.password_hash,
            created_at=datetime.now(timezone.utc),
            email_confirmed=user.email_confirmed,
        )
        self.rows[new.id] = new
        return new

    def get(self, user_id):
        return self.rows.get(user_id)

    def get_by_email(self, email):
        return next((u for u in self.rows.values() if u.email == email), None)

    def get_by_name(self, name):
        return next((u for u in self.rows.values() if u.name == name), None)

    def list(self, offset, limit):
        users = sorted(self.rows.values(), key=lambda u: u.id)
        return users[offset : offset + limit], len(users)

    def update(self, user_id, changes):
        refused = set(changes) - USER_FIELDS_UPDATABLE
        if refused:  # as MySQL's repository: the email changes only through confirm_email
            raise ValueError(f"not updatable: {sorted(refused)}")
        user = self.rows.get(user_id)
        if user is None:
            return None
        if "name" in changes and any(
            u.name == changes["name"] and u.id != user_id for u in self.rows.values()
        ):
            raise Conflict("that name is taken")
        from core.domain.accounts import Role

        for key, value in changes.items():
            setattr(user, key, Role(value) if key == "role" else value)
        return user

    def confirm_email(self, user_id, address):
        user = self.rows.get(user_id)
        if user is None or not (
            user.pending_email == address or (user.email == address and not user.email_confirmed)
        ):
            return False
        if any(u.email == address and u.id != user_id for u in self.rows.values()):
            raise Conflict("that email is taken")
        user.email, user.pending_email, user.email_confirmed = address, None, True
        return True

    def delete(self, user_id):
        return self.rows.pop(user_id, None) is not None


class FakeJobs(JobRepository, JobLeases, EmailClaims, JobSweeps, QuotaHolds):
    """Every role of the jobs' records on one table of rows, as MySQL keeps them: pass it
    as each role a service takes."""

    def __init__(self):
        self.rows: dict[str, Job] = {}
        self.holds: dict[str, QuotaHold] = {}

    def add(self, job: Job) -> Job:
        job.created_at = job.updated_at = datetime.now(timezone.utc).replace(tzinfo=None)
        self.rows[job.id] = job
        return job

    def get(self, job_id):
        return self.rows.get(job_id)

    def list_for_owner(self, owner_id, offset, limit, status=None, tag=None):
        jobs = sorted(
            (
                j
                for j in self.rows.values()
                if j.owner_id == owner_id
                and (status is None or j.status is status)
                and (tag is None or j.tag == tag)
            ),
            key=lambda j: j.created_at,
            reverse=True,
        )
        return jobs[offset : offset + limit], len(jobs)

    def list_ids_for_owner(self, owner_id):
        return [j.id for j in self.rows.values() if j.owner_id == owner_id]

    def update(self, job_id, changes, only_if_status=None):
        refused = set(changes) & JOB_FIELDS_NOT_UPDATABLE
        if refused:
            raise ValueError(f"not updatable: {sorted(refused)}")
        job = self.rows.get(job_id)
        if job is None or (only_if_status and job.status not in only_if_status):
            return False
        for key, value in changes.items():
            setattr(job, key, value)
        job.updated_at = datetime.now(timezone.utc).replace(tzinfo=None)
        return True

    def delete(self, job_id):
        return self.rows.pop(job_id, None) is not None

    def stale(self, statuses, older_than):
        return [j for j in self.rows.values() if j.status in statuses and j.updated_at < older_than]

    def take_over(self, job_id, dead_lease_id, lease_id, expires_at, holder=None):
        job = self.rows.get(job_id)
        if job is None or job.status is not JobStatus.CONVERTING or job.lease_id != dead_lease_id:
            return False
        job.lease_id, job.lease_expires_at, job.lease_holder = lease_id, expires_at, holder
        job.attempts += 1
        job.progress, job.error = 0.0, None
        return True

    def claim(self, job_id, lease_id, expires_at, now, holder=None):
        job = self.rows.get(job_id)
        if job is None or not (
            job.status is JobStatus.QUEUED
            or (
                job.status is JobStatus.CONVERTING
                and (job.lease_expires_at is None or job.lease_expires_at < now)
            )
        ):
            return False
        job.status, job.lease_id, job.lease_expires_at = JobStatus.CONVERTING, lease_id, expires_at
        job.lease_holder = holder
        job.attempts += 1
        job.progress, job.error = 0.0, None
        return True

    def _holds(self, job_id, lease_id):
        job = self.rows.get(job_id)
        return job is not None and job.lease_id == lease_id and job.status is JobStatus.CONVERTING

    def renew(self, job_id, lease_id, expires_at):
        if not self._holds(job_id, lease_id):
            return False
        self.rows[job_id].lease_expires_at = expires_at
        return True

    def update_leased(self, job_id, lease_id, changes):
        if not self._holds(job_id, lease_id):
            return False
        return self.update(job_id, changes)

    def claim_notification(self, job_id, holder, until, now):
        job = self.rows.get(job_id)
        if (
            job is None
            or job.status is not JobStatus.DONE
            or job.notified_at is not None
            or job.notify_error is not None
            or (
                job.notify_until is not None
                and job.notify_until >= now
                and job.notify_holder != holder
            )
        ):
            return False
        job.notify_holder, job.notify_until = holder, until
        return True

    def unsent(self, finished_before, now):
        return [
            j
            for j in self.rows.values()
            if j.status is JobStatus.DONE
            and j.notified_at is None
            and j.notify_error is None
            and j.finished_at is not None
            and j.finished_at < finished_before
            and (j.notify_until is None or j.notify_until < now)
        ]

    def expired_leases(self, now):
        return [
            j
            for j in self.rows.values()
            if j.status is JobStatus.CONVERTING
            and (j.lease_expires_at is None or j.lease_expires_at < now)
        ]

    def usage(self, owner_id, now=None, without_hold=None):
        now = now or datetime.now(timezone.utc).replace(tzinfo=None)
        mine = [j for j in self.rows.values() if j.owner_id == owner_id]
        held = [
            h
            for h in self.holds.values()
            if h.owner_id == owner_id and h.expires_at > now and h.id != without_hold
        ]
        return (
            sum(j.active for j in mine) + sum(h.jobs for h in held),
            sum(
                (j.video_size if j.video_fid else 0) + ((j.mp3_size or 0) if j.mp3_fid else 0)
                for j in mine
            )
            + sum(h.bytes for h in held),
        )

    def hold(self, hold, max_active, max_stored, now):
        active, stored = self.usage(hold.owner_id, now, hold.id)
        if active + 1 > max_active or stored + hold.bytes > max_stored:
            return False, active, stored
        self.holds[hold.id] = hold
        return True, active, stored

    def extend_hold(self, hold_id, expires_at):
        if hold_id in self.holds:
            self.holds[hold_id] = replace(self.holds[hold_id], expires_at=expires_at)

    def release_hold(self, hold_id):
        self.holds.pop(hold_id, None)

    def add_held(self, job, hold_id, max_active, max_stored, now):
        active, stored = self.usage(job.owner_id, now, hold_id)
        if active + 1 > max_active or stored + job.video_size > max_stored:
            return False, active, stored
        self.holds.pop(hold_id or "", None)
        self.add(job)
        return True, active, stored

    def purgeable(self, now, ended_before):
        ended = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
        return [
            j
            for j in self.rows.values()
            if (j.status is JobStatus.DONE and j.expires_at and j.expires_at < now)
            or (j.status is JobStatus.EXPIRED and (j.mp3_fid or j.video_fid))
            or (
                ended_before is not None
                and j.status in ended
                and j.video_fid
                and j.finished_at
                and j.finished_at < ended_before
            )
        ]


class _Writer:
    def __init__(self):
        self.buffer = io.BytesIO()
        self.fid = uuid.uuid4().hex

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)


class FakeBlobs(BlobStore):
    def __init__(self):
        self.files: dict[tuple[str, str], tuple[bytes, Blob]] = {}

    @contextmanager
    def writer(self, bucket, filename, content_type, metadata=None):
        writer = _Writer()
        yield writer
        data = writer.buffer.getvalue()
        self.files[(bucket, writer.fid)] = (
            data,
            Blob(
                fid=writer.fid,
                size=len(data),
                content_type=content_type,
                filename=filename,
                metadata=dict(metadata or {}),
            ),
        )

    def stat(self, bucket, fid):
        found = self.files.get((bucket, fid))
        return found[1] if found else None

    @contextmanager
    def open(self, bucket, fid):
        if (bucket, fid) not in self.files:
            raise NotFound("no such file")
        yield io.BytesIO(self.files[(bucket, fid)][0])

    @contextmanager
    def local_path(self, bucket, fid, scratch_dir):
        import os

        if (bucket, fid) not in self.files:
            raise NotFound("no such file")
        path = os.path.join(scratch_dir, f"copy-{fid}")
        with open(path, "wb") as fh:
            fh.write(self.files[(bucket, fid)][0])
        try:
            yield path
        finally:
            os.unlink(path)

    def delete(self, bucket, fid):
        return self.files.pop((bucket, fid), None) is not None

    def ping(self):
        return None

    def in_bucket(self, bucket: str) -> list[bytes]:
        return [data for (b, _), (data, _) in self.files.items() if b == bucket]


class FakeItems(ItemStore):
    def __init__(self):
        self.values: dict[tuple[int, str], tuple[dict, float]] = {}
        self.hits = 0
        self.now = time.time

    def put(self, owner_id, key, value, ttl, quota=None):
        new = self.get(owner_id, key) is None
        items, used = self.usage(owner_id)
        old = 0 if new else self._size(key, self.values[(owner_id, key)][0])
        if quota is not None and quota.items is not None and new and items >= quota.items:
            return ItemPut(False, "items", items, used)
        if quota is not None and quota.bytes is not None:
            if used - old + self._size(key, value) > quota.bytes:
                return ItemPut(False, "bytes", items, used)
        self.values[(owner_id, key)] = (dict(value), self.now() + ttl)
        return ItemPut(new, None, items, used)

    @staticmethod
    def _size(key, value):
        return len(json.dumps(value)) + len(key)

    def get(self, owner_id, key):
        found = self.values.get((owner_id, key))
        if found is None or found[1] <= self.now():
            return None
        return dict(found[0]), int(found[1] - self.now())

    def delete(self, owner_id, key):
        return self.values.pop((owner_id, key), None) is not None

    def usage(self, owner_id):
        live = [
            self._size(key, self.values[(owner, key)][0])
            for (owner, key) in self.values
            if owner == owner_id and self.get(owner, key) is not None
        ]
        return len(live), sum(live)

    def incr_hits(self):
        self.hits += 1
        return self.hits

    def ping(self):
        return None


class FakeMailer(Mailer):
    def __init__(self, failures: int = 0):
        self.sent: list[Email] = []
        self.failures = failures

    def send(self, email: Email) -> None:
        if self.failures:
            self.failures -= 1
            raise MailError("SMTP server down")
        self.sent.append(email)


class FakeQueue(TaskQueue):
    def __init__(self):
        self.converts: list[str] = []
        self.fetches: list[str] = []
        self.notifies: list[str] = []
        self.waiting: list[str] = []  # what the broker still holds, for the sweeper
        self.events: list[tuple[str, str]] = []
        self.holders: list[str | None] = []
        self.deliveries: list[str] = []
        self.account_emails: list[tuple[int, str, str | None]] = []

    def enqueue_convert(self, job_id):
        self.converts.append(job_id)

    def enqueue_fetch(self, job_id):
        self.fetches.append(job_id)

    def enqueue_notify(self, job_id, holder=None):
        self.notifies.append(job_id)
        self.holders.append(holder)

    def enqueue_event(self, job_id, event):
        self.events.append((job_id, event))

    def enqueue_account_email(self, user_id, kind, address=None):
        self.account_emails.append((user_id, kind, address))

    def enqueue_delivery(self, delivery_id, holder=None):
        self.deliveries.append(delivery_id)

    def pending_convert_ids(self):
        return set(self.waiting)


class FakeLimiter(RateLimiter):
    """Fixed windows on a clock the test moves."""

    def __init__(self):
        self.now = 0.0
        self.windows: dict[tuple[int, int, str], tuple[float, int]] = {}

    def _window(self, amount, seconds, key):
        start, hits = self.windows.get((amount, seconds, key), (self.now, 0))
        if self.now >= start + seconds:
            start, hits = self.now, 0
        return start, hits

    def retry_after(self, amount, seconds, key):
        start, hits = self._window(amount, seconds, key)
        return 0 if hits < amount else max(1, int(start + seconds - self.now))

    def hit(self, amount, seconds, key):
        retry = self.retry_after(amount, seconds, key)
        if not retry:
            start, hits = self._window(amount, seconds, key)
            self.windows[(amount, seconds, key)] = (start, hits + 1)
        return retry

    def reset(self, amount, seconds, key):
        self.windows.pop((amount, seconds, key), None)


class FakeKnownAddresses(KnownAddresses):
    def __init__(self):
        self.addresses: dict[int, set[str]] = {}

    def remember(self, user_id, address):
        self.addresses.setdefault(user_id, set()).add(address)

    def knows(self, user_id, address):
        return address in self.addresses.get(user_id, set())

    def forget(self, user_id):
        self.addresses.pop(user_id, None)


class FakeTokenStates(TokenStates):
    def __init__(self):
        self.cached: dict[int, object] = {}
        self.lookups = 0

    def get(self, user_id):
        self.lookups += 1
        return (True, self.cached[user_id]) if user_id in self.cached else (False, None)

    def offer(self, user_id, state):
        self.cached.setdefault(user_id, state)

    def publish(self, user_id, state):
        self.cached[user_id] = state


class FakeSniffer(Sniffer):
    head_bytes = 64

    def sniff(self, head):
        return "mp4" if head.startswith(b"\x00\x00\x00\x18ftyp") else None


class FakeTranscoder(Transcoder):
    """Copies bytes; b"POISON" in the input is unreadable media. `hold` (an Event) makes the
    encode wait, silently, until it is set or the caller asks it to stop."""

    def __init__(self):
        self.encoded: list[tuple[str, str]] = []
        self.hold = None
        self.running = 0
        self.most_at_once = 0

    def probe(self, path):
        data = open(path, "rb").read()
        if b"POISON" in data:
            raise MediaError(MediaError.NOT_MEDIA, "Invalid data found when processing input")
        return MediaInfo(duration=3.0, has_audio=b"SILENT" not in data, has_video=True)

    def encode_audio(self, src, dst, options, source=None, on_progress=None, should_stop=None):
        source = source or self.probe(src)
        if not source.has_audio:
            raise MediaError(MediaError.NO_AUDIO)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            while self.hold is not None and not self.hold.wait(0.01):
                if should_stop is not None and should_stop():
                    raise Stopped()
            if on_progress:
                on_progress(50.0)
            with open(dst, "wb") as fh:
                fh.write(b"ID3" + open(src, "rb").read()[:10])
            self.encoded.append((src, options.label))
        finally:
            self.running -= 1
        return Encoded(duration=3.0, mode="encode", source=source)


class TmpScratch(ScratchSpace):
    def __init__(self, root):
        from core.adapters.stores.scratch import LocalScratch

        self._local = LocalScratch(str(root))

    def attempt(self, job_id, attempt_id):
        return self._local.attempt(job_id, attempt_id)


class FakeIdempotency(IdempotencyStore):
    def __init__(self):
        self.records: dict[tuple[int, str], dict] = {}

    def reserve(self, owner_id, key, ttl):
        if (owner_id, key) in self.records:
            return dict(self.records[(owner_id, key)])
        self.records[(owner_id, key)] = {"pending": True}
        return None

    def complete(self, owner_id, key, record, ttl):
        self.records[(owner_id, key)] = dict(record)

    def release(self, owner_id, key):
        self.records.pop((owner_id, key), None)


class FakeHolders(AttemptHolders):
    """Processes by name; the test says which are gone."""

    def __init__(self, name: str = "here:100:1"):
        self.name = name
        self.gone: set[str] = set()

    def current(self):
        return self.name

    def is_gone(self, holder):
        return holder in self.gone


# Resumable uploads (tus)


class FakeLease:
    def __init__(self):
        self.renewals = 0

    def renew(self):
        self.renewals += 1
        return True


class FakeUploadRepo(UploadRepository):
    def __init__(self):
        self.rows: dict[str, Upload] = {}
        self.locked: set[str] = set()

    def add(self, upload):
        self.rows[upload.id] = replace(upload)

    def get(self, upload_id):
        row = self.rows.get(upload_id)
        return replace(row) if row else None

    def update(self, upload_id, changes):
        for name, value in changes.items():
            setattr(self.rows[upload_id], name, value)

    def delete(self, upload_id):
        return self.rows.pop(upload_id, None) is not None

    def expired(self, now):
        return [u.id for u in self.rows.values() if u.expires_at < now]

    @contextmanager
    def lock(self, upload_id, ttl):
        if upload_id in self.locked:
            yield None
            return
        self.locked.add(upload_id)
        try:
            yield FakeLease()
        finally:
            self.locked.discard(upload_id)


class _Sink:
    def __init__(self, buffer: bytearray):
        self.buffer = buffer
        self.size = 0

    def write(self, data):
        self.buffer += data
        self.size += len(data)
        return len(data)


class FakePartialStore(PartialUploadStore):
    """Partial uploads as byte arrays; finishing moves them into a FakeBlobs bucket."""

    def __init__(self, blobs: FakeBlobs, clock=None):
        import time

        self.blobs = blobs
        self.clock = clock or time.time
        self.parts: dict[str, tuple[str, bytearray]] = {}
        self.touched: dict[str, datetime] = {}

    def create(self, bucket):
        handle = uuid.uuid4().hex
        self.parts[handle] = (bucket, bytearray())
        self.touched[handle] = datetime.fromtimestamp(self.clock(), timezone.utc).replace(
            tzinfo=None
        )
        return handle

    @contextmanager
    def appender(self, handle, offset):
        if handle not in self.parts:
            raise NotFound("upload not found")
        buffer = self.parts[handle][1]
        del buffer[offset:]
        yield _Sink(buffer)

    def truncate(self, handle, size):
        del self.parts[handle][1][size:]

    def size(self, handle):
        return len(self.parts[handle][1]) if handle in self.parts else None

    def finish(self, handle, filename, content_type, metadata=None):
        bucket, data = self.parts.pop(handle)
        blob = Blob(
            fid=handle,
            size=len(data),
            content_type=content_type,
            filename=filename,
            metadata=dict(metadata or {}),
        )
        self.blobs.files[(bucket, handle)] = (bytes(data), blob)
        return blob

    def delete(self, handle):
        return self.parts.pop(handle, None) is not None

    def stale(self, older_than):
        return [h for h in self.parts if self.touched[h] < older_than]


class FakeSlots(Slots):
    """Counting semaphores in a dict; a slot never frees itself (no clock)."""

    def __init__(self):
        self.held: dict[str, set[str]] = {}

    def acquire(self, limits, ttl):
        if any(len(self.held.get(key, ())) >= limit for key, limit in limits.items()):
            return None
        token = uuid.uuid4().hex
        for key in limits:
            self.held.setdefault(key, set()).add(token)
        return token

    def renew(self, keys, token, ttl):
        return all(token in self.held.get(key, ()) for key in keys)

    def release(self, keys, token):
        for key in keys:
            self.held.get(key, set()).discard(token)


class FakeWebhookRepo(WebhookRepository):
    """Endpoints and deliveries in dicts. The sweep's question (`unannounced`) joins jobs in
    MySQL; here no endpoint means nothing to announce, and a test that adds one belongs in
    tests/integration."""

    def __init__(self):
        self.endpoints: dict[str, Any] = {}
        self.deliveries: dict[str, Any] = {}
        self.secrets: dict[int, str] = {}

    def add_endpoint(self, endpoint):
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def get_endpoint(self, endpoint_id):
        return self.endpoints.get(endpoint_id)

    def list_endpoints(self, owner_id):
        mine = self.endpoints.values()
        return [e for e in mine if e.owner_id == owner_id and e.job_id is None]

    def job_endpoint(self, endpoint):
        return self.endpoint_of_job(endpoint.job_id) or self.add_endpoint(endpoint)

    def endpoint_of_job(self, job_id):
        return next((e for e in self.endpoints.values() if e.job_id == job_id), None)

    def signing_secret(self, owner_id, new, replace=False):
        if replace or owner_id not in self.secrets:
            self.secrets[owner_id] = new
        return self.secrets[owner_id]

    def endpoints_for(self, owner_id, event):
        mine = self.list_endpoints(owner_id)
        return [e for e in mine if e.disabled_at is None and event in e.events]

    def delete_endpoint(self, endpoint_id):
        return self.endpoints.pop(endpoint_id, None) is not None

    def disable_endpoint(self, endpoint_id):
        endpoint = self.endpoints[endpoint_id]
        self.endpoints[endpoint_id] = replace(endpoint, disabled_at=datetime.now(timezone.utc))

    def add_delivery(self, delivery):
        key = (delivery.endpoint_id, delivery.job_id, delivery.event)
        if any((d.endpoint_id, d.job_id, d.event) == key for d in self.deliveries.values()):
            return False
        self.deliveries[delivery.id] = delivery
        return True

    def get_delivery(self, delivery_id):
        return self.deliveries.get(delivery_id)

    def list_deliveries(self, endpoint_id, limit):
        mine = [d for d in self.deliveries.values() if d.endpoint_id == endpoint_id]
        return list(reversed(mine))[:limit]

    def update_delivery(self, delivery_id, changes):
        self.deliveries[delivery_id] = replace(self.deliveries[delivery_id], **changes)

    def claim_delivery(self, delivery_id, holder, until, now, force=False):
        raise NotImplementedError("claims are tested on MySQL (tests/integration)")

    def unannounced(self, ended_after, ended_before):
        if self.endpoints:
            raise NotImplementedError("the webhook sweep is tested on MySQL (tests/integration)")
        return []


class Unplugged:
    """A backing service the unit tier does not have: any use fails naming it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        raise AssertionError(f"the unit tier has no {self._name} (it used .{attr})")


class Clock:
    """Seconds since the epoch, on a clock the test moves."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeJobEvents(JobEventSink, JobEventFeed):
    """Job events kept in a list (`published`); nothing listens in the unit tier, so a stream
    opened here fails as with Redis down."""

    def __init__(self):
        self.published: list[tuple[str, Any]] = []

    def publish(self, job_id, event):
        self.published.append((job_id, event))

    def subscribe(self, job_id, buffer):
        raise Unavailable("redis")

    def listeners(self):
        return 0

    def wake_all(self):
        pass


# when the fakes below say a row was made (tests compare with it)
FAKE_START = datetime(2026, 12, 5, 6, 0, tzinfo=timezone.utc)


class FakeApiKeys(ApiKeyRepository):
    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.roles: dict[int, str] = {}
        self.touches = 0
        self.finds = 0

    def add(self, key: ApiKey) -> ApiKey:
        key.created_at = FAKE_START
        self.keys[key.id] = key
        return key

    def get(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)

    def find(self, prefix: str) -> KeyHolder | None:
        self.finds += 1
        for key in self.keys.values():
            if key.prefix == prefix and key.owner_id in self.roles:
                return KeyHolder(key, self.roles[key.owner_id])
        return None

    def list(self, owner_id: int) -> list[ApiKey]:
        return [k for k in self.keys.values() if k.owner_id == owner_id]

    def count(self, owner_id: int) -> int:
        return len(self.list(owner_id))

    def delete(self, key_id: str) -> bool:
        return self.keys.pop(key_id, None) is not None

    def touch(self, key_id: str, now: datetime, every_seconds: int) -> None:
        key = self.keys[key_id]
        if key.last_used_at is None or now - key.last_used_at >= timedelta(seconds=every_seconds):
            key.last_used_at = now
            self.touches += 1


class FakeUploadLinks(UploadLinkRepository):
    def __init__(self) -> None:
        self.rows: dict[str, UploadLink] = {}

    def add(self, link: UploadLink) -> UploadLink:
        self.rows[link.id] = replace(link, created_at=FAKE_START)
        return self.rows[link.id]

    def get(self, link_id: str) -> UploadLink | None:
        row = self.rows.get(link_id)
        return replace(row) if row else None

    def find(self, token_hash: bytes) -> UploadLink | None:
        return next((replace(r) for r in self.rows.values() if r.token_hash == token_hash), None)

    def list(self, owner_id: int) -> list[UploadLink]:
        return [r for r in self.rows.values() if r.owner_id == owner_id and not r.deleted_at]

    def count_open(self, owner_id: int, now: datetime) -> int:
        return sum(r.state(now) == "open" for r in self.list(owner_id))

    def delete(self, link_id: str, now: datetime) -> bool:
        row = self.rows[link_id]
        if row.deleted_at:
            return False
        row.deleted_at = now
        return True

    def claim(self, link_id, now, stale_before, resumable_stale_before) -> bool:
        row = self.rows[link_id]
        stale = resumable_stale_before if row.upload_id else stale_before
        if row.state(now) != "open" or (row.used_at is not None and row.used_at >= stale):
            return False
        row.used_at, row.upload_id = now, None
        return True

    def attach(self, link_id: str, upload_id: str, now: datetime) -> None:
        self.rows[link_id].upload_id, self.rows[link_id].used_at = upload_id, now

    def complete(self, link_id: str, job_id: str) -> None:
        self.rows[link_id].job_id = job_id

    def release(self, link_id: str) -> None:
        if self.rows[link_id].job_id is None:
            self.rows[link_id].used_at = self.rows[link_id].upload_id = None


def fake_adapters(scratch_dir, clock: Clock) -> dict[str, Any]:
    """Every adapter of core.bootstrap.Container, in memory, by component name: what the unit
    tier passes to the Container production builds. MySQL, Redis and Celery are unplugged."""
    jobs, blobs = FakeJobs(), FakeBlobs()
    return {
        "db": Unplugged("MySQL"),
        "redis": Unplugged("Redis"),
        "celery": Unplugged("Celery broker"),
        "queue_collector": Unplugged("Celery broker"),
        "webhook_sender": Unplugged("webhook receiver"),
        "metrics": NullMetrics(),
        "clock": clock,
        "user_repo": FakeUsers(),
        "job_repo": jobs,
        "job_leases": jobs,
        "fetch_leases": Unplugged("MySQL (fetch leases)"),
        "fetcher": Unplugged("the network (imports by URL)"),
        "job_events": FakeJobEvents(),
        "api_key_repo": FakeApiKeys(),
        "upload_link_repo": FakeUploadLinks(),
        "email_claims": jobs,
        "job_sweeps": jobs,
        "quota_holds": jobs,
        "blob_store": blobs,
        "item_store": FakeItems(),
        "mailer": FakeMailer(),
        "queue": FakeQueue(),
        "rate_limiter": FakeLimiter(),
        "sniffer": FakeSniffer(),
        "transcoder": FakeTranscoder(),
        "scratch": TmpScratch(scratch_dir),
        "attempt_holders": FakeHolders(),
        "token_states": FakeTokenStates(),
        "known_addresses": FakeKnownAddresses(),
        "idempotency": FakeIdempotency(),
        "slots": FakeSlots(),
        "webhook_repo": FakeWebhookRepo(),
        "upload_repo": FakeUploadRepo(),
        "partial_uploads": FakePartialStore(blobs, clock),
    }
