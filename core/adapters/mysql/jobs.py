"""The jobs table, one class per role of the ports (records, leases, email claims, sweeps):
parameterized SQL only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.mysql.rows import as_utc, claim_row
from core.domain.jobs import Job, JobStatus
from core.observability import current_request_id
from core.ports.jobs import (
    JOB_FIELDS_NOT_UPDATABLE,
    EmailClaims,
    JobLeases,
    JobRepository,
    JobSweeps,
)

JOB_COLUMNS = (
    "id",
    "owner_id",
    "status",
    "progress",
    "error",
    "video_fid",
    "video_filename",
    "video_size",
    "bitrate",
    "mp3_fid",
    "mp3_size",
    "duration_s",
    "attempts",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "notified_at",
    "notify_error",
    "notify_holder",
    "notify_until",
    "lease_id",
    "lease_expires_at",
    "lease_holder",
    "request_id",
    "expires_at",
    "options",
    "source",
    "mode",
    "notes",
    "source_url",
    "fetched_bytes",
    "fetch_total",
    "tag",
    "webhook_url",
)
_JSON_COLUMNS = ("options", "source", "notes")
JOB_UPDATABLE = set(JOB_COLUMNS) - JOB_FIELDS_NOT_UPDATABLE
_SELECT_JOBS = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"


def _job(row: dict[str, Any] | None) -> Job | None:
    if row is None:
        return None
    values = {key: as_utc(value) for key, value in row.items()}
    values["status"] = JobStatus(values["status"])
    values["owner_id"] = int(values["owner_id"])
    for column in _JSON_COLUMNS:
        raw = values.get(column)
        values[column] = json.loads(raw) if raw is not None else None
    values["options"] = values["options"] or {}
    values["notes"] = values["notes"] or []
    return Job(**values)


def insert_job(cur: Any, job: Job) -> None:
    cur.execute(
        "INSERT INTO jobs (id, owner_id, status, video_fid, video_filename, video_size, "
        "bitrate, request_id, options, source_url, tag, webhook_url) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            job.id,
            job.owner_id,
            job.status.value,
            job.video_fid,
            job.video_filename,
            job.video_size,
            job.bitrate,
            job.request_id or current_request_id(),
            json.dumps(job.options),
            job.source_url,
            job.tag,
            job.webhook_url,
        ),
    )


def _update_job(
    db: MySQLDatabase,
    job_id: str,
    changes: dict[str, Any],
    where: str = "",
    where_params: list[Any] | None = None,
) -> bool:
    unknown = set(changes) - JOB_UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values = [
        v.value if isinstance(v, JobStatus) else json.dumps(v) if column in _JSON_COLUMNS else v
        for column, v in changes.items()
    ]
    assignments = "".join(f"{column} = %s, " for column in changes)
    sql = f"UPDATE jobs SET {assignments}updated_at = UTC_TIMESTAMP(6) WHERE id = %s{where}"
    with db.cursor() as cur:
        cur.execute(sql, [*values, job_id, *(where_params or [])])
        return bool(cur.rowcount > 0)


class MySQLJobRepository(JobRepository):
    """The jobs table as records."""

    def __init__(self, db: MySQLDatabase):
        self.db = db

    def add(self, job: Job) -> Job:
        with self.db.cursor() as cur:
            insert_job(cur, job)
        created = self.get(job.id)
        assert created is not None
        return created

    def get(self, job_id: str) -> Job | None:
        with self.db.cursor() as cur:
            cur.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = %s", (job_id,))
            return _job(cur.fetchone())

    def list_for_owner(
        self,
        owner_id: int,
        offset: int,
        limit: int,
        status: JobStatus | None = None,
        tag: str | None = None,
    ) -> tuple[list[Job], int]:
        where, params = "owner_id = %s", [owner_id]
        if status is not None:
            where += " AND status = %s"
            params.append(status.value)  # type: ignore[arg-type]
        if tag is not None:
            where += " AND tag = %s"
            params.append(tag)  # type: ignore[arg-type]
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE {where} "
                "ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
                (*params, limit, offset),
            )
            jobs = [_job(row) for row in cur.fetchall()]
            cur.execute(f"SELECT COUNT(*) AS n FROM jobs WHERE {where}", params)
            total = int(cur.fetchone()["n"])
        return [j for j in jobs if j], total

    def list_ids_for_owner(self, owner_id: int) -> list[str]:
        with self.db.cursor() as cur:
            cur.execute("SELECT id FROM jobs WHERE owner_id = %s", (owner_id,))
            return [row["id"] for row in cur.fetchall()]

    def update(
        self,
        job_id: str,
        changes: dict[str, Any],
        only_if_status: tuple[JobStatus, ...] | None = None,
    ) -> bool:
        where, params = "", []
        if only_if_status:
            where = f" AND status IN ({', '.join(['%s'] * len(only_if_status))})"
            params = [s.value for s in only_if_status]
        return _update_job(self.db, job_id, changes, where, params)

    def delete(self, job_id: str) -> bool:
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM jobs WHERE id = %s", (job_id,))
            return bool(cur.rowcount > 0)


class _HeldLeases(JobLeases):
    """What a lease on the jobs table does the same in every phase: renewing it and writing
    under it, both only while the job is still in `_HELD` (its phase's status)."""

    _HELD: str

    def __init__(self, db: MySQLDatabase):
        self.db = db

    def renew(self, job_id: str, lease_id: str, expires_at: datetime) -> bool:
        with self.db.cursor() as cur:
            # updated_at is left alone: a heartbeat is not a change a polling client sees.
            cur.execute(
                "UPDATE jobs SET lease_expires_at = %s WHERE id = %s AND lease_id = %s "
                "AND status = %s",
                (expires_at, job_id, lease_id, self._HELD),
            )
            if cur.rowcount > 0:
                return True
            cur.execute(
                "SELECT 1 FROM jobs WHERE id = %s AND lease_id = %s AND status = %s",
                (job_id, lease_id, self._HELD),
            )
            return cur.fetchone() is not None  # same expiry twice in one microsecond

    def update_leased(self, job_id: str, lease_id: str, changes: dict[str, Any]) -> bool:
        return _update_job(
            self.db, job_id, changes, " AND lease_id = %s AND status = %s", [lease_id, self._HELD]
        )


class MySQLJobLeases(_HeldLeases):
    """The lease columns of the jobs table, for a conversion (status 'converting')."""

    _HELD = "converting"

    _CLAIM = (
        "UPDATE jobs SET status = 'converting', lease_id = %s, lease_expires_at = %s, "
        "lease_holder = %s, attempts = attempts + 1, progress = 0, error = NULL, "
        "started_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) WHERE id = %s "
    )

    def claim(
        self,
        job_id: str,
        lease_id: str,
        expires_at: datetime,
        now: datetime,
        holder: str | None = None,
    ) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                self._CLAIM + "AND (status = 'queued' OR (status = 'converting' AND "
                "(lease_expires_at IS NULL OR lease_expires_at < %s)))",
                (lease_id, expires_at, holder, job_id, now),
            )
            return bool(cur.rowcount > 0)

    def take_over(
        self,
        job_id: str,
        dead_lease_id: str,
        lease_id: str,
        expires_at: datetime,
        holder: str | None = None,
    ) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                self._CLAIM + "AND status = 'converting' AND lease_id = %s",
                (lease_id, expires_at, holder, job_id, dead_lease_id),
            )
            return bool(cur.rowcount > 0)


class MySQLEmailClaims(EmailClaims):
    """The notify columns of the jobs table."""

    def __init__(self, db: MySQLDatabase):
        self.db = db

    def claim_notification(self, job_id: str, holder: str, until: datetime, now: datetime) -> bool:
        return claim_row(
            self.db,
            "jobs",
            ("notify_holder", "notify_until"),
            "status = 'done' AND notified_at IS NULL AND notify_error IS NULL",
            job_id,
            holder,
            until,
            now,
        )

    def unsent(self, finished_before: datetime, now: datetime) -> list[Job]:
        with self.db.cursor() as cur:
            cur.execute(
                f"{_SELECT_JOBS} WHERE status = 'done' AND notified_at IS NULL "
                "AND notify_error IS NULL AND finished_at < %s "
                "AND (notify_until IS NULL OR notify_until < %s) ORDER BY finished_at LIMIT 500",
                (finished_before, now),
            )
            return [j for j in (_job(row) for row in cur.fetchall()) if j]


class MySQLJobSweeps(JobSweeps):
    """The sweeper's and the retention's queries on the jobs table."""

    def __init__(self, db: MySQLDatabase):
        self.db = db

    def stale(self, statuses: tuple[JobStatus, ...], older_than: datetime) -> list[Job]:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE status IN "
                f"({', '.join(['%s'] * len(statuses))}) AND updated_at < %s "
                "ORDER BY updated_at LIMIT 500",
                (*[s.value for s in statuses], older_than),
            )
            return [j for j in (_job(row) for row in cur.fetchall()) if j]

    def expired_leases(self, now: datetime) -> list[Job]:
        with self.db.cursor() as cur:
            cur.execute(
                f"{_SELECT_JOBS} WHERE status = 'converting' AND "
                "(lease_expires_at IS NULL OR lease_expires_at < %s) "
                "ORDER BY lease_expires_at LIMIT 500",
                (now,),
            )
            return [j for j in (_job(row) for row in cur.fetchall()) if j]

    def purgeable(self, now: datetime, ended_before: datetime | None) -> list[Job]:
        with self.db.cursor() as cur:
            sql = (
                f"{_SELECT_JOBS} WHERE (status = 'done' AND expires_at < %s) "
                "OR (status = 'expired' AND (mp3_fid IS NOT NULL OR video_fid IS NOT NULL))"
            )
            params: list[Any] = [now]
            if ended_before is not None:
                sql += (
                    " OR (status IN ('done', 'failed', 'cancelled') AND video_fid IS NOT NULL"
                    " AND finished_at < %s)"
                )
                params.append(ended_before)
            cur.execute(sql + " LIMIT 500", params)
            return [j for j in (_job(row) for row in cur.fetchall()) if j]


class MySQLFetchLeases(_HeldLeases):
    """The lease columns of the jobs table for a fetch: the same lease as a conversion's,
    held on a job in status 'fetching' (a fetch ends by moving the job to 'queued')."""

    _HELD = "fetching"

    _CLAIM = (
        "UPDATE jobs SET lease_id = %s, lease_expires_at = %s, lease_holder = %s, "
        "attempts = attempts + 1, fetched_bytes = 0, fetch_total = NULL, error = NULL, "
        "started_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
        "WHERE id = %s AND status = 'fetching' "
    )

    def claim(
        self,
        job_id: str,
        lease_id: str,
        expires_at: datetime,
        now: datetime,
        holder: str | None = None,
    ) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                self._CLAIM + "AND (lease_expires_at IS NULL OR lease_expires_at < %s)",
                (lease_id, expires_at, holder, job_id, now),
            )
            return bool(cur.rowcount > 0)

    def take_over(
        self,
        job_id: str,
        dead_lease_id: str,
        lease_id: str,
        expires_at: datetime,
        holder: str | None = None,
    ) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                self._CLAIM + "AND lease_id = %s",
                (lease_id, expires_at, holder, job_id, dead_lease_id),
            )
            return bool(cur.rowcount > 0)
