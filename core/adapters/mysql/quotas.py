"""The quota holds, counted with the owner's jobs under a lock on the owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.mysql.jobs import insert_job
from core.domain.jobs import Job
from core.domain.values import utcnow
from core.ports.jobs import (
    QuotaHold,
    QuotaHolds,
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
        "AND status IN ('fetching', 'queued', 'converting')) AS active_jobs, "
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
            insert_job(cur, job)
        return True, active, stored
