"""The jobs' records, split by role: the records themselves, the lease of a conversion attempt,
the claim on a done job's email, the sweeper's queries and the quota holds. One database may
implement them all; each service takes only the roles it uses."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.domain.jobs import Job, JobStatus

# Job fields `JobRepository.update` refuses: identity and timestamps, and the claims, which
# change only through JobLeases (claim, renew, take_over) and EmailClaims.
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


class JobRepository(abc.ABC):
    """Jobs as records: add, read, list, change and delete."""

    @abc.abstractmethod
    def add(self, job: Job) -> Job: ...

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    def list_for_owner(
        self,
        owner_id: int,
        offset: int,
        limit: int,
        status: JobStatus | None = None,
        tag: str | None = None,
    ) -> tuple[list[Job], int]:
        """One page of an owner's jobs (in `status`, with `tag`, when given), newest first,
        and the total."""

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


class JobLeases(abc.ABC):
    """The lease a conversion attempt holds on its job: one owner at a time, renewed by a
    heartbeat, reclaimed once expired."""

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


class EmailClaims(abc.ABC):
    """Who sends a done job's email: a sender claims it first, so it goes out once."""

    @abc.abstractmethod
    def claim_notification(self, job_id: str, holder: str, until: datetime, now: datetime) -> bool:
        """Let holder send the done job's email until `until`: True when the email is still
        unsent and no other holder's claim runs at `now` (a holder may extend its own)."""

    @abc.abstractmethod
    def unsent(self, finished_before: datetime, now: datetime) -> list[Job]:
        """Done jobs finished before `finished_before` whose email was neither sent, given up
        on, nor claimed by a sender at `now`."""


class JobSweeps(abc.ABC):
    """The queries that find work whose message was lost, and files kept no longer."""

    @abc.abstractmethod
    def stale(self, statuses: tuple[JobStatus, ...], older_than: datetime) -> list[Job]:
        """Jobs in these states not updated since older_than."""

    @abc.abstractmethod
    def expired_leases(self, now: datetime) -> list[Job]:
        """Converting jobs whose lease expired before now."""

    @abc.abstractmethod
    def purgeable(self, now: datetime, ended_before: datetime | None) -> list[Job]:
        """Jobs with files to delete: done jobs whose expires_at is before now, expired jobs
        still holding a file id, and (with ended_before) ended jobs finished before it that
        still hold their source video."""


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


class QuotaHolds(abc.ABC):
    """What each owner's jobs and uploads take of the quotas. Quotas are taken, not only
    checked: an upload holds its room (QuotaHold) from the moment it is admitted, under a lock
    on the owner, so uploads arriving together are counted one after the other."""

    @abc.abstractmethod
    def usage(self, owner_id: int, now: datetime | None = None) -> tuple[int, int]:
        """(active jobs, stored bytes) of an owner as the quotas count them: queued and
        converting jobs, stored videos and MP3s, and the holds unexpired at now."""

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
