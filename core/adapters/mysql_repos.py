"""User and job repositories on MySQL: parameterized SQL only."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from core.adapters.mysql_db import MySQLDatabase
from core.domain.accounts import NewUser, Role, User
from core.domain.jobs import Job, JobStatus
from core.domain.values import utcnow
from core.domain.webhooks import OUTCOME_EVENTS, WebhookDelivery, WebhookEndpoint
from core.observability import current_request_id
from core.ports.accounts import USER_FIELDS_UPDATABLE, UserRepository
from core.ports.jobs import (
    JOB_FIELDS_NOT_UPDATABLE,
    EmailClaims,
    JobLeases,
    JobRepository,
    JobSweeps,
    QuotaHold,
    QuotaHolds,
)
from core.ports.webhooks import WebhookRepository

USER_COLUMNS = (
    "id, name, email, phone, role, password_hash, token_version, created_at, "
    "pending_email, email_confirmed_at"
)


def _utc(value: Any) -> Any:
    """MySQL hands back naive datetimes; they are UTC."""
    return value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) else value


def _user(row: dict[str, Any] | None) -> User | None:
    if row is None:
        return None
    return User(
        id=int(row["id"]),
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        token_version=int(row["token_version"]),
        created_at=_utc(row["created_at"]),
        pending_email=row["pending_email"],
        email_confirmed=row["email_confirmed_at"] is not None,
    )


def _claim(
    db: MySQLDatabase,
    table: str,
    columns: tuple[str, str],
    open_while: str,
    row_id: str,
    holder: str,
    until: datetime,
    now: datetime,
    force: bool = False,
) -> bool:
    """Write (holder, until) into the row's claim columns while `open_while` (SQL) holds and
    no other holder's claim runs at now (whatever claim runs, with force); True also when the
    row already carries exactly this claim (the same values again change no row)."""
    holder_column, until_column = columns
    free = (
        ""
        if force
        else f" AND ({until_column} IS NULL OR {until_column} < %s OR {holder_column} = %s)"
    )
    with db.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET {holder_column} = %s, {until_column} = %s "
            f"WHERE id = %s AND {open_while}{free}",
            (holder, until, row_id) + (() if force else (now, holder)),
        )
        if cur.rowcount > 0:
            return True
        cur.execute(
            f"SELECT 1 FROM {table} WHERE id = %s AND {holder_column} = %s "
            f"AND {until_column} = %s AND {open_while}",
            (row_id, holder, until),
        )
        return cur.fetchone() is not None


class MySQLUserRepository(UserRepository):
    def __init__(self, db: MySQLDatabase):
        self.db = db

    def _one(self, where: str, value: Any) -> User | None:
        with self.db.cursor() as cur:
            cur.execute(f"SELECT {USER_COLUMNS} FROM users WHERE {where} = %s", (value,))
            return _user(cur.fetchone())

    def add(self, user: NewUser) -> User:
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO users (name, email, phone, role, password_hash, email_confirmed_at) "
                "VALUES (%s, %s, %s, %s, %s, IF(%s, UTC_TIMESTAMP(6), NULL))",
                (
                    user.name,
                    user.email,
                    user.phone,
                    user.role.value,
                    user.password_hash,
                    user.email_confirmed,
                ),
            )
            new_id = cur.lastrowid
        created = self.get(new_id)
        assert created is not None
        return created

    def get(self, user_id: int) -> User | None:
        return self._one("id", user_id)

    def get_by_email(self, email: str) -> User | None:
        return self._one("email", email)

    def get_by_name(self, name: str) -> User | None:
        return self._one("name", name)

    def list(self, offset: int, limit: int) -> tuple[list[User], int]:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT %s OFFSET %s", (limit, offset)
            )
            users = [_user(row) for row in cur.fetchall()]
            cur.execute("SELECT COUNT(*) AS n FROM users")
            total = int(cur.fetchone()["n"])
        return [u for u in users if u], total

    def update(self, user_id: int, changes: dict[str, Any]) -> User | None:
        unknown = set(changes) - USER_FIELDS_UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if changes:
            assignments = ", ".join(f"{column} = %s" for column in changes)
            with self.db.cursor() as cur:
                cur.execute(
                    f"UPDATE users SET {assignments}, updated_at = UTC_TIMESTAMP(6) WHERE id = %s",
                    (*changes.values(), user_id),
                )
        return self.get(user_id)

    def confirm_email(self, user_id: int, address: str) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE users SET email = %s, pending_email = NULL, "
                "email_confirmed_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) "
                "WHERE id = %s AND (pending_email = %s "
                "OR (email = %s AND email_confirmed_at IS NULL))",
                (address, user_id, address, address),
            )
            return bool(cur.rowcount > 0)

    def delete(self, user_id: int) -> bool:
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
            return bool(cur.rowcount > 0)


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
)
_JSON_COLUMNS = ("options", "source", "notes")
JOB_UPDATABLE = set(JOB_COLUMNS) - JOB_FIELDS_NOT_UPDATABLE
_SELECT_JOBS = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"


def _job(row: dict[str, Any] | None) -> Job | None:
    if row is None:
        return None
    values = {key: _utc(value) for key, value in row.items()}
    values["status"] = JobStatus(values["status"])
    values["owner_id"] = int(values["owner_id"])
    for column in _JSON_COLUMNS:
        raw = values.get(column)
        values[column] = json.loads(raw) if raw is not None else None
    values["options"] = values["options"] or {}
    values["notes"] = values["notes"] or []
    return Job(**values)


def _insert_job(cur: Any, job: Job) -> None:
    cur.execute(
        "INSERT INTO jobs (id, owner_id, status, video_fid, video_filename, video_size, "
        "bitrate, request_id, options) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
        ),
    )


def _lock_owner(cur: Any, owner_id: int) -> bool:
    """Take the owner's row lock for the rest of the transaction: every quota decision of
    one owner waits for the one before it. False when the owner is gone."""
    cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (owner_id,))
    return cur.fetchone() is not None


def _usage(cur: Any, owner_id: int, now: datetime, without_hold: str) -> tuple[int, int]:
    """(active jobs, stored bytes) of an owner: jobs and the holds unexpired at now, but for
    the hold named without_hold."""
    cur.execute(
        "SELECT (SELECT COUNT(*) FROM jobs WHERE owner_id = %s "
        "AND status IN ('queued', 'converting')) AS active_jobs, "
        "(SELECT COALESCE(SUM(IF(video_fid IS NULL, 0, video_size) "
        "+ IF(mp3_fid IS NULL, 0, COALESCE(mp3_size, 0))), 0) FROM jobs WHERE owner_id = %s) "
        "AS stored_jobs, "
        "(SELECT COALESCE(SUM(jobs), 0) FROM quota_holds WHERE owner_id = %s "
        "AND expires_at > %s AND id <> %s) AS active_holds, "
        "(SELECT COALESCE(SUM(bytes), 0) FROM quota_holds WHERE owner_id = %s "
        "AND expires_at > %s AND id <> %s) AS stored_holds",
        (owner_id, owner_id, owner_id, now, without_hold, owner_id, now, without_hold),
    )
    row = cur.fetchone()
    return (
        int(row["active_jobs"]) + int(row["active_holds"]),
        int(row["stored_jobs"]) + int(row["stored_holds"]),
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
            _insert_job(cur, job)
        created = self.get(job.id)
        assert created is not None
        return created

    def get(self, job_id: str) -> Job | None:
        with self.db.cursor() as cur:
            cur.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = %s", (job_id,))
            return _job(cur.fetchone())

    def list_for_owner(
        self, owner_id: int, offset: int, limit: int, status: JobStatus | None = None
    ) -> tuple[list[Job], int]:
        where, params = "owner_id = %s", [owner_id]
        if status is not None:
            where = "owner_id = %s AND status = %s"
            params = [owner_id, status.value]  # type: ignore[list-item]
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


class MySQLJobLeases(JobLeases):
    """The lease columns of the jobs table."""

    def __init__(self, db: MySQLDatabase):
        self.db = db

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

    def renew(self, job_id: str, lease_id: str, expires_at: datetime) -> bool:
        with self.db.cursor() as cur:
            # updated_at is left alone: a heartbeat is not a change a polling client sees.
            cur.execute(
                "UPDATE jobs SET lease_expires_at = %s WHERE id = %s AND lease_id = %s "
                "AND status = 'converting'",
                (expires_at, job_id, lease_id),
            )
            if cur.rowcount > 0:
                return True
            cur.execute(
                "SELECT 1 FROM jobs WHERE id = %s AND lease_id = %s AND status = 'converting'",
                (job_id, lease_id),
            )
            return cur.fetchone() is not None  # same expiry twice in one microsecond

    def update_leased(self, job_id: str, lease_id: str, changes: dict[str, Any]) -> bool:
        return _update_job(
            self.db, job_id, changes, " AND lease_id = %s AND status = 'converting'", [lease_id]
        )


class MySQLEmailClaims(EmailClaims):
    """The notify columns of the jobs table."""

    def __init__(self, db: MySQLDatabase):
        self.db = db

    def claim_notification(self, job_id: str, holder: str, until: datetime, now: datetime) -> bool:
        return _claim(
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


class MySQLQuotaHolds(QuotaHolds):
    """The quota_holds table, counted with the owner's jobs."""

    def __init__(self, db: MySQLDatabase):
        self.db = db

    def usage(self, owner_id: int, now: datetime | None = None) -> tuple[int, int]:
        with self.db.cursor() as cur:
            return _usage(cur, owner_id, now or utcnow(), "")

    def hold(
        self, hold: QuotaHold, max_active: int, max_stored: int, now: datetime
    ) -> tuple[bool, int, int]:
        with self.db.transaction() as cur:
            if not _lock_owner(cur, hold.owner_id):
                return False, 0, 0
            cur.execute(
                "DELETE FROM quota_holds WHERE owner_id = %s AND expires_at <= %s",
                (hold.owner_id, now),
            )
            active, stored = _usage(cur, hold.owner_id, now, hold.id)
            if active + 1 > max_active or stored + hold.bytes > max_stored:
                return False, active, stored
            cur.execute(
                "INSERT INTO quota_holds (id, owner_id, bytes, jobs, expires_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (hold.id, hold.owner_id, hold.bytes, hold.jobs, hold.expires_at),
            )
            return True, active, stored

    def extend_hold(self, hold_id: str, expires_at: datetime) -> None:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE quota_holds SET expires_at = %s WHERE id = %s", (expires_at, hold_id)
            )

    def release_hold(self, hold_id: str) -> None:
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM quota_holds WHERE id = %s", (hold_id,))

    def add_held(
        self, job: Job, hold_id: str | None, max_active: int, max_stored: int, now: datetime
    ) -> tuple[bool, int, int]:
        with self.db.transaction() as cur:
            if not _lock_owner(cur, job.owner_id):
                return False, 0, 0
            active, stored = _usage(cur, job.owner_id, now, hold_id or "")
            if active + 1 > max_active or stored + job.video_size > max_stored:
                return False, active, stored
            if hold_id:
                cur.execute("DELETE FROM quota_holds WHERE id = %s", (hold_id,))
            _insert_job(cur, job)
        return True, active, stored


ENDPOINT_COLUMNS = "id, owner_id, url, events, secret, disabled_at, created_at"
DELIVERY_COLUMNS = (
    "id",
    "endpoint_id",
    "job_id",
    "event",
    "body",
    "attempts",
    "last_status",
    "last_error",
    "next_retry_at",
    "delivered_at",
    "failed_at",
    "created_at",
)
DELIVERY_UPDATABLE = {
    "attempts",
    "last_status",
    "last_error",
    "next_retry_at",
    "delivered_at",
    "failed_at",
}


def _endpoint(row: dict[str, Any] | None) -> WebhookEndpoint | None:
    if row is None:
        return None
    values = {key: _utc(value) for key, value in row.items()}
    values["events"] = [e for e in str(values["events"]).split(",") if e]
    values["owner_id"] = int(values["owner_id"])
    return WebhookEndpoint(**values)


def _delivery(row: dict[str, Any] | None) -> WebhookDelivery | None:
    if row is None:
        return None
    return WebhookDelivery(**{key: _utc(value) for key, value in row.items()})


# The webhook event of each ended job's status, as SQL.
_EVENT_OF_STATUS = (
    "CASE j.status "
    + " ".join(f"WHEN '{status.value}' THEN '{event}'" for status, event in OUTCOME_EVENTS.items())
    + " END"
)


class MySQLWebhookRepository(WebhookRepository):
    def __init__(self, db: MySQLDatabase):
        self.db = db

    def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO webhook_endpoints (id, owner_id, url, events, secret) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    endpoint.id,
                    endpoint.owner_id,
                    endpoint.url,
                    ",".join(endpoint.events),
                    endpoint.secret,
                ),
            )
        added = self.get_endpoint(endpoint.id)
        assert added is not None
        return added

    def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s", (endpoint_id,)
            )
            return _endpoint(cur.fetchone())

    def list_endpoints(self, owner_id: int) -> list[WebhookEndpoint]:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE owner_id = %s "
                "ORDER BY created_at, id",
                (owner_id,),
            )
            return [e for e in (_endpoint(row) for row in cur.fetchall()) if e]

    def endpoints_for(self, owner_id: int, event: str) -> list[WebhookEndpoint]:
        return [
            e for e in self.list_endpoints(owner_id) if e.disabled_at is None and event in e.events
        ]

    def delete_endpoint(self, endpoint_id: str) -> bool:
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM webhook_endpoints WHERE id = %s", (endpoint_id,))
            return bool(cur.rowcount > 0)

    def disable_endpoint(self, endpoint_id: str) -> None:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE webhook_endpoints SET disabled_at = UTC_TIMESTAMP(6) "
                "WHERE id = %s AND disabled_at IS NULL",
                (endpoint_id,),
            )

    def unannounced(self, ended_after: datetime, ended_before: datetime) -> list[tuple[str, str]]:
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT j.id, j.status, j.updated_at FROM jobs j "
                "JOIN webhook_endpoints e ON e.owner_id = j.owner_id "
                "AND e.disabled_at IS NULL AND e.created_at <= j.finished_at "
                f"WHERE j.status IN ({', '.join(repr(s.value) for s in OUTCOME_EVENTS)}) "
                "AND j.finished_at >= %s AND j.finished_at < %s AND j.updated_at < %s "
                f"AND FIND_IN_SET({_EVENT_OF_STATUS}, e.events) "
                "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d "
                "WHERE d.endpoint_id = e.id AND d.job_id = j.id) "
                "ORDER BY j.updated_at LIMIT 500",
                (ended_after, ended_before, ended_before),
            )
            return [(row["id"], OUTCOME_EVENTS[JobStatus(row["status"])]) for row in cur.fetchall()]

    def add_delivery(self, delivery: WebhookDelivery) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT IGNORE INTO webhook_deliveries (id, endpoint_id, job_id, event, "
                "body) VALUES (%s, %s, %s, %s, %s)",
                (delivery.id, delivery.endpoint_id, delivery.job_id, delivery.event, delivery.body),
            )
            return bool(cur.rowcount > 0)

    def claim_delivery(
        self, delivery_id: str, holder: str, until: datetime, now: datetime, force: bool = False
    ) -> bool:
        return _claim(
            self.db,
            "webhook_deliveries",
            ("holder", "held_until"),
            "delivered_at IS NULL AND failed_at IS NULL",
            delivery_id,
            holder,
            until,
            now,
            force,
        )

    def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM webhook_deliveries WHERE id = %s",
                (delivery_id,),
            )
            return _delivery(cur.fetchone())

    def list_deliveries(self, endpoint_id: str, limit: int) -> list[WebhookDelivery]:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM webhook_deliveries "
                "WHERE endpoint_id = %s ORDER BY created_at DESC, id LIMIT %s",
                (endpoint_id, limit),
            )
            return [d for d in (_delivery(row) for row in cur.fetchall()) if d]

    def update_delivery(self, delivery_id: str, changes: dict[str, Any]) -> None:
        unknown = set(changes) - DELIVERY_UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{column} = %s" for column in changes)
        with self.db.cursor() as cur:
            cur.execute(
                f"UPDATE webhook_deliveries SET {assignments} WHERE id = %s",
                (*changes.values(), delivery_id),
            )
