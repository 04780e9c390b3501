"""Abstract interfaces the services depend on. Adapters in core.adapters implement them."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Callable, Protocol

from core.domain.accounts import NewUser, User
from core.domain.files import Blob
from core.domain.jobs import Job, JobStatus, Upload
from core.domain.media import Encoded, MediaInfo
from core.domain.options import AudioOptions
from core.domain.values import Email
from core.domain.webhooks import WebhookDelivery, WebhookEndpoint

# User columns `UserRepository.update` changes: the email changes only through confirm_email,
# once its owner confirmed it.
USER_FIELDS_UPDATABLE = frozenset(
    {"name", "phone", "role", "password_hash", "token_version", "pending_email"}
)


class UserRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, user: NewUser) -> User:
        """Insert a user; raises Conflict when the name or email is taken."""

    @abc.abstractmethod
    def get(self, user_id: int) -> User | None: ...

    @abc.abstractmethod
    def get_by_email(self, email: str) -> User | None: ...

    @abc.abstractmethod
    def get_by_name(self, name: str) -> User | None: ...

    @abc.abstractmethod
    def list(self, offset: int, limit: int) -> tuple[list[User], int]:
        """One page of users ordered by id, and the total count."""

    @abc.abstractmethod
    def update(self, user_id: int, changes: dict[str, Any]) -> User | None:
        """Apply column changes (never the email: see confirm_email); Conflict on a taken
        name."""

    @abc.abstractmethod
    def confirm_email(self, user_id: int, address: str) -> bool:
        """Make `address` the user's confirmed email, if it is still their pending one or
        their unconfirmed one; False otherwise. Conflict when another user has it."""

    @abc.abstractmethod
    def delete(self, user_id: int) -> bool: ...


# Job fields `JobRepository.update` refuses: identity and timestamps, and the claims, which
# change only through claim, renew, take_over and claim_notification.
JOB_FIELDS_NOT_UPDATABLE = frozenset(
    {
        "id",
        "owner_id",
        "created_at",
        "updated_at",
        "lease_id",
        "lease_expires_at",
        "lease_holder",
        "request_id",
        "notify_holder",
        "notify_until",
    }
)


@dataclass(frozen=True)
class QuotaHold:
    """Room an upload takes in its owner's quotas while its bytes arrive: `bytes` of
    QUOTA_STORED_MB and `jobs` (1 for an upload that becomes a job when it ends, 0 for a
    resumable upload that may wait a day for its next piece) of QUOTA_ACTIVE_JOBS."""

    id: str
    owner_id: int
    bytes: int
    jobs: int
    expires_at: datetime


class JobRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, job: Job) -> Job: ...

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def list_for_owner(
        self, owner_id: int, offset: int, limit: int, status: JobStatus | None = None
    ) -> tuple[list[Job], int]:
        """One page of an owner's jobs (in `status`, when given), newest first, and the total."""

    @abc.abstractmethod
    def list_ids_for_owner(self, owner_id: int) -> list[str]: ...

    @abc.abstractmethod
    def update(
        self,
        job_id: str,
        changes: dict[str, Any],
        only_if_status: tuple[JobStatus, ...] | None = None,
    ) -> bool:
        """Apply changes; with only_if_status, only when the job is in one of those states.
        Returns whether a row changed state. ValueError for a JOB_FIELDS_NOT_UPDATABLE."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> bool: ...

    @abc.abstractmethod
    def stale(self, statuses: tuple[JobStatus, ...], older_than: datetime) -> list[Job]:
        """Jobs in these states not updated since older_than."""

    @abc.abstractmethod
    def claim(
        self,
        job_id: str,
        lease_id: str,
        expires_at: datetime,
        now: datetime,
        holder: str | None = None,
    ) -> bool:
        """Make lease_id the job's owner, when it is queued, or converting under a lease that
        expired before now; marks it converting and counts the attempt. `holder` names the
        process running the attempt."""

    @abc.abstractmethod
    def take_over(
        self,
        job_id: str,
        dead_lease_id: str,
        lease_id: str,
        expires_at: datetime,
        holder: str | None = None,
    ) -> bool:
        """`claim` from an attempt whose process is known to be gone, before its lease runs
        out: only while dead_lease_id still holds the job."""

    @abc.abstractmethod
    def renew(self, job_id: str, lease_id: str, expires_at: datetime) -> bool:
        """Extend the lease while lease_id still holds it; False when it was lost."""

    @abc.abstractmethod
    def update_leased(self, job_id: str, lease_id: str, changes: dict[str, Any]) -> bool:
        """Apply changes only while lease_id holds a converting job."""

    @abc.abstractmethod
    def claim_notification(self, job_id: str, holder: str, until: datetime, now: datetime) -> bool:
        """Let holder send the done job's email until `until`: True when the email is still
        unsent and no other holder's claim runs at `now` (a holder may extend its own)."""

    @abc.abstractmethod
    def unsent(self, finished_before: datetime, now: datetime) -> list[Job]:
        """Done jobs finished before `finished_before` whose email was neither sent, given up
        on, nor claimed by a sender at `now`."""

    @abc.abstractmethod
    def expired_leases(self, now: datetime) -> list[Job]:
        """Converting jobs whose lease expired before now."""

    @abc.abstractmethod
    def usage(self, owner_id: int, now: datetime | None = None) -> tuple[int, int]:
        """(active jobs, stored bytes) of an owner as the quotas count them: queued and
        converting jobs, stored videos and MP3s, and the holds unexpired at now."""

    # Quotas are taken, not only checked: an upload holds its room (QuotaHold) from the
    # moment it is admitted, under a lock on the owner, so uploads arriving together are
    # counted one after the other.

    @abc.abstractmethod
    def hold(
        self, hold: QuotaHold, max_active: int, max_stored: int, now: datetime
    ) -> tuple[bool, int, int]:
        """Record the hold when, with it, the owner stays within max_active jobs (counting one
        more job, whatever hold.jobs says) and max_stored bytes. One atomic step per owner.
        Returns (taken, active, stored), counted without it."""

    @abc.abstractmethod
    def extend_hold(self, hold_id: str, expires_at: datetime) -> None: ...

    @abc.abstractmethod
    def release_hold(self, hold_id: str) -> None:
        """Forget a hold (nothing happens when it is gone already)."""

    @abc.abstractmethod
    def add_held(
        self, job: Job, hold_id: str | None, max_active: int, max_stored: int, now: datetime
    ) -> tuple[bool, int, int]:
        """Insert the job in place of its hold, in one atomic step, when the owner stays
        within the quotas counted without the hold (which may have expired meanwhile).
        Returns (added, active, stored), counted without the hold."""

    @abc.abstractmethod
    def purgeable(self, now: datetime, ended_before: datetime | None) -> list[Job]:
        """Jobs with files to delete: done jobs whose expires_at is before now, expired jobs
        still holding a file id, and (with ended_before) ended jobs finished before it that
        still hold their source video."""


class BlobWriter(Protocol):
    """What a blob store's writer() yields: the new file's id, and a sink for its bytes."""

    fid: str
    size: int

    def write(self, data: bytes) -> int: ...


class BlobStore(abc.ABC):
    """Named buckets ("videos", "mp3s") of immutable files addressed by a string id."""

    @abc.abstractmethod
    def writer(
        self, bucket: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> AbstractContextManager[BlobWriter]:
        """Stream a new file in. On a clean exit the file becomes visible and the writer's
        `fid` attribute holds its id; on an exception nothing is left behind."""

    @abc.abstractmethod
    def stat(self, bucket: str, fid: str) -> Blob | None: ...

    @abc.abstractmethod
    def open(self, bucket: str, fid: str) -> AbstractContextManager[BinaryIO]:
        """A seekable binary reader; raises NotFound for an unknown id."""

    @abc.abstractmethod
    def local_path(self, bucket: str, fid: str, scratch_dir: str) -> AbstractContextManager[str]:
        """A path on local disk holding the file for the duration of the block: the file
        itself when the store keeps files on disk, else a copy in scratch_dir removed on exit."""

    @abc.abstractmethod
    def delete(self, bucket: str, fid: str) -> bool: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise Unavailable when the store cannot be reached."""


@dataclass(frozen=True)
class ItemQuota:
    """What one owner's items may take: how many, and how many bytes of the store's memory
    (None: no limit)."""

    items: int | None = None
    bytes: int | None = None


@dataclass(frozen=True)
class ItemPut:
    """What a put did: stored (created: the key was new), or refused because the owner's
    `over` ("items" or "bytes") quota would be exceeded; items and bytes in use before it."""

    created: bool
    over: str | None = None
    items: int = 0
    bytes: int = 0


class ItemStore(abc.ABC):
    """JSON objects with an expiry, kept per owner."""

    @abc.abstractmethod
    def put(
        self,
        owner_id: int,
        key: str,
        value: dict[str, Any],
        ttl: int,
        quota: ItemQuota | None = None,
    ) -> ItemPut:
        """Store, unless the owner's quota would be exceeded: the check and the write are one
        atomic step, so concurrent puts cannot pass the quota together."""

    @abc.abstractmethod
    def get(self, owner_id: int, key: str) -> tuple[dict[str, Any], int] | None:
        """The stored object and its remaining seconds, or None when missing or expired."""

    @abc.abstractmethod
    def delete(self, owner_id: int, key: str) -> bool: ...

    @abc.abstractmethod
    def usage(self, owner_id: int) -> tuple[int, int]:
        """(items, bytes) of the owner's unexpired items, as the quota counts them."""

    @abc.abstractmethod
    def incr_hits(self) -> int: ...

    @abc.abstractmethod
    def ping(self) -> None: ...


class IdempotencyStore(abc.ABC):
    """What each Idempotency-Key of a user was used for: reserved while its request is being
    received, then the request's fingerprint and the job it made."""

    @abc.abstractmethod
    def reserve(self, owner_id: int, key: str, ttl: int) -> dict[str, Any] | None:
        """Reserve the key for a request now being received: None when this call reserved it,
        else what the key holds ({"pending": true} or {"fingerprint", "job_id"})."""

    @abc.abstractmethod
    def complete(self, owner_id: int, key: str, record: dict[str, Any], ttl: int) -> None:
        """Replace the reservation with what the request made."""

    @abc.abstractmethod
    def release(self, owner_id: int, key: str) -> None:
        """Forget a reservation whose request failed, so a retry starts afresh."""


class RateLimiter(abc.ABC):
    """Counts events per key against a rate of `amount` per `seconds`."""

    @abc.abstractmethod
    def hit(self, amount: int, seconds: int, key: str) -> int:
        """Count one event; 0 when it fits the rate, else seconds until one would."""

    @abc.abstractmethod
    def retry_after(self, amount: int, seconds: int, key: str) -> int:
        """0 when another event fits the rate now, else seconds until one would."""

    @abc.abstractmethod
    def reset(self, amount: int, seconds: int, key: str) -> None: ...


class KnownAddresses(abc.ABC):
    """The client addresses each account signed in from lately (the login throttle lets them
    past the per-account cap)."""

    @abc.abstractmethod
    def remember(self, user_id: int, address: str) -> None: ...

    @abc.abstractmethod
    def knows(self, user_id: int, address: str) -> bool: ...

    @abc.abstractmethod
    def forget(self, user_id: int) -> None:
        """Drop every address of the account (its password changed, or it was deleted)."""


TokenState = tuple[int, str]  # (token_version, role) of a user


class TokenStates(abc.ABC):
    """A shared cache of each user's token state, so checking a token needs no SQL.
    `None` records a deleted user."""

    @abc.abstractmethod
    def get(self, user_id: int) -> tuple[bool, TokenState | None]:
        """(found, state); found is False on a miss."""

    @abc.abstractmethod
    def offer(self, user_id: int, state: TokenState | None) -> None:
        """Cache a state read from the repository, unless one is cached already."""

    @abc.abstractmethod
    def publish(self, user_id: int, state: TokenState | None) -> None:
        """Record a state that just changed, replacing whatever is cached."""


class Mailer(abc.ABC):
    @abc.abstractmethod
    def send(self, email: Email) -> None:
        """Deliver or raise; transient failures raise MailError."""


class TaskQueue(abc.ABC):
    @abc.abstractmethod
    def enqueue_convert(self, job_id: str) -> None: ...

    @abc.abstractmethod
    def enqueue_notify(self, job_id: str, holder: str | None = None) -> None:
        """Email the owner (notify queue); `holder` names a claim made for that task."""

    @abc.abstractmethod
    def enqueue_account_email(self, user_id: int, kind: str, address: str | None = None) -> None:
        """Send one AccountEmail (notify queue); `address`: the address to confirm, or the old
        address told of a change."""

    @abc.abstractmethod
    def enqueue_event(self, job_id: str, event: str) -> None:
        """Tell the job owner's webhooks about event (webhooks queue)."""

    @abc.abstractmethod
    def enqueue_delivery(self, delivery_id: str, holder: str | None = None) -> None:
        """Deliver (again) one webhook message (webhooks queue)."""

    @abc.abstractmethod
    def pending_convert_ids(self) -> set[str] | None:
        """Job ids waiting in the convert queue; None when the broker cannot tell."""


class Sniffer(abc.ABC):
    """A fast early refusal of uploads that are not audio or video; not the gate itself."""

    head_bytes: int = 4096

    @abc.abstractmethod
    def sniff(self, head: bytes) -> str | None:
        """Short container name when the first bytes carry a known signature, else None."""


class Transcoder(abc.ABC):
    """Runs the untrusted media tool. Raises MediaError with a user-facing reason."""

    @abc.abstractmethod
    def probe(self, path: str) -> MediaInfo: ...

    @abc.abstractmethod
    def encode_mp3(
        self,
        src: str,
        dst: str,
        options: AudioOptions,
        source: MediaInfo | None = None,
        on_progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Encoded:
        """Write src's chosen audio track with the options applied as an MP3 at dst (copied
        when it already is MP3 and no option changes it); stops early when should_stop().
        Without `source` (a probe's result) it describes src itself, within the same ceilings;
        `Encoded.source` is the description either way."""


class WebhookRepository(abc.ABC):
    @abc.abstractmethod
    def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint: ...

    @abc.abstractmethod
    def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None: ...

    @abc.abstractmethod
    def list_endpoints(self, owner_id: int) -> list[WebhookEndpoint]: ...

    @abc.abstractmethod
    def endpoints_for(self, owner_id: int, event: str) -> list[WebhookEndpoint]:
        """The owner's enabled endpoints subscribed to event."""

    @abc.abstractmethod
    def delete_endpoint(self, endpoint_id: str) -> bool: ...

    @abc.abstractmethod
    def disable_endpoint(self, endpoint_id: str) -> None: ...

    @abc.abstractmethod
    def add_delivery(self, delivery: WebhookDelivery) -> bool:
        """Insert unless (endpoint, job, event) has one already; True when inserted."""

    @abc.abstractmethod
    def get_delivery(self, delivery_id: str) -> WebhookDelivery | None: ...

    @abc.abstractmethod
    def list_deliveries(self, endpoint_id: str, limit: int) -> list[WebhookDelivery]:
        """Newest first."""

    @abc.abstractmethod
    def update_delivery(self, delivery_id: str, changes: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def claim_delivery(
        self, delivery_id: str, holder: str, until: datetime, now: datetime, force: bool = False
    ) -> bool:
        """Let holder send the delivery until `until`: True when it is neither delivered nor
        failed and no other holder's claim runs at `now` (a holder may extend its own;
        `force` takes it from any holder: a manual redelivery)."""

    @abc.abstractmethod
    def unannounced(self, ended_after: datetime, ended_before: datetime) -> list[tuple[str, str]]:
        """(job_id, event) for jobs that ended within the window, unchanged since its end,
        while an enabled endpoint of their owner was subscribed to the outcome's event, and
        that endpoint has no delivery of the job: events whose emission was lost."""


class WebhookSender(abc.ABC):
    """Posts one signed webhook message to a receiver."""

    @abc.abstractmethod
    def check_url(self, url: str) -> None:
        """Raise InvalidInput unless url is http(s) and every address it resolves to may be
        called (public, unless private receivers are allowed)."""

    @abc.abstractmethod
    def send(self, url: str, secret: str, msg_id: str, body: str) -> int:
        """Sign and POST body; the receiver's status code (redirects are not followed).
        Raises WebhookError when no answer came (refused address, timeout, connection)."""


class Slots(abc.ABC):
    """Counting semaphores shared by every process: at most `limit` holders of a key at once
    (webhook deliveries in flight per receiver and per owner; a user's uploads being
    received). A slot its holder never releases (a killed process) frees itself after its
    ttl; a holder working longer renews it."""

    @abc.abstractmethod
    def acquire(self, limits: dict[str, int], ttl: float) -> str | None:
        """A token holding one slot of every key at once, or None, taking nothing, when any
        key already has its limit of holders."""

    @abc.abstractmethod
    def renew(self, keys: list[str], token: str, ttl: float) -> bool:
        """Hold the token's slots for another ttl; False when one had already freed itself."""

    @abc.abstractmethod
    def release(self, keys: list[str], token: str) -> None: ...


class WebhookError(Exception):
    """A webhook message got no answer; the message is a short reason, safe to show."""


class MailError(Exception):
    """Mail could not be delivered now; worth retrying."""


class AttemptHolders(abc.ABC):
    """Names the process running a conversion attempt, and tells when such a process is gone
    (so its lease need not be waited out)."""

    @abc.abstractmethod
    def current(self) -> str:
        """This process's name, as stored in the job's lease."""

    @abc.abstractmethod
    def is_gone(self, holder: str) -> bool:
        """True only when it is certain the named process no longer runs: False for a
        process it cannot see (another machine) or a name it does not understand."""


class ScratchSpace(abc.ABC):
    """Private working directories, one per conversion attempt."""

    @abc.abstractmethod
    def attempt(self, job_id: str, attempt_id: str) -> AbstractContextManager[str]:
        """A fresh directory for this attempt, removed with its contents on exit; leftovers of
        the job's earlier attempts (which no longer hold the lease) are removed first."""


# --- resumable uploads (tus) ------------------------------------------------------------


class PartialAppender(Protocol):
    """What PartialUploadStore.appender() yields: a sink counting the bytes it kept."""

    size: int

    def write(self, data: bytes) -> int: ...


class PartialUploadStore(abc.ABC):
    """Unfinished uploads kept in the blob store, appended to piece by piece; `finish`
    turns one into an ordinary file of a bucket."""

    @abc.abstractmethod
    def create(self, bucket: str) -> str:
        """Start an empty partial upload that will become a file of bucket; returns its handle."""

    @abc.abstractmethod
    def appender(self, handle: str, offset: int) -> AbstractContextManager[PartialAppender]:
        """Append at offset: anything stored beyond offset is dropped first. Whatever was
        written is kept however the block ends (a dropped connection keeps what arrived)."""

    @abc.abstractmethod
    def truncate(self, handle: str, size: int) -> None:
        """Drop everything past size (a rejected chunk)."""

    @abc.abstractmethod
    def size(self, handle: str) -> int | None:
        """Bytes stored, or None when there is no such partial upload."""

    @abc.abstractmethod
    def finish(
        self, handle: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Blob:
        """Publish the bytes as a file of the bucket given at creation (without copying them
        when the store can) and forget the partial upload."""

    @abc.abstractmethod
    def delete(self, handle: str) -> bool: ...

    @abc.abstractmethod
    def stale(self, older_than: datetime) -> list[str]:
        """Handles of partial uploads not written to since older_than (naive UTC)."""


class UploadRepository(abc.ABC):
    """The state of resumable uploads, with a lease per upload so one PATCH writes at a time."""

    @abc.abstractmethod
    def add(self, upload: Upload) -> None: ...

    @abc.abstractmethod
    def get(self, upload_id: str) -> Upload | None: ...

    @abc.abstractmethod
    def update(self, upload_id: str, changes: dict[str, Any]) -> None:
        """Set offset, expires_at or job_id."""

    @abc.abstractmethod
    def delete(self, upload_id: str) -> bool: ...

    @abc.abstractmethod
    def expired(self, now: float) -> list[str]:
        """Ids of uploads whose expires_at is before now."""

    @abc.abstractmethod
    def lock(self, upload_id: str, ttl: float) -> AbstractContextManager[Any | None]:
        """Hold the upload's lease for the block, or yield None when someone else holds it.
        The yielded lease's `renew()` pushes its expiry ttl seconds further."""


class Metrics(abc.ABC):
    """What the service counts for its operators; the Prometheus adapter implements it."""

    @abc.abstractmethod
    def upload_received(self, size: int) -> None:
        """A video of `size` bytes was accepted."""

    @abc.abstractmethod
    def job_finished(self, outcome: str, seconds: float | None = None) -> None:
        """A conversion ended: succeeded (with its duration), failed or cancelled."""

    @abc.abstractmethod
    def email(self, outcome: str) -> None:
        """An email delivery attempt: sent, skipped, retry or failed."""

    @abc.abstractmethod
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """An HTTP request answered, by route template (never the raw path; "<unmatched>"
        when no route matched). The method is counted as "other" unless it is a standard one."""

    @abc.abstractmethod
    def webhook(self, outcome: str) -> None:
        """A webhook delivery attempt: delivered, retry, disabled or failed."""


class NullMetrics(Metrics):
    """Counts nothing (unit tests, tools)."""

    def upload_received(self, size: int) -> None:
        pass

    def job_finished(self, outcome: str, seconds: float | None = None) -> None:
        pass

    def email(self, outcome: str) -> None:
        pass

    def webhook(self, outcome: str) -> None:
        pass

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass
