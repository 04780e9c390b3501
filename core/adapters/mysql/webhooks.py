"""The webhook endpoints and deliveries tables: parameterized SQL only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.mysql.rows import as_utc, claim_row
from core.domain.jobs import JobStatus
from core.domain.webhooks import OUTCOME_EVENTS, WebhookDelivery, WebhookEndpoint
from core.ports.webhooks import WebhookRepository

ENDPOINT_COLUMNS = "id, owner_id, url, events, secret, disabled_at, created_at, job_id"
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
    values = {key: as_utc(value) for key, value in row.items()}
    values["events"] = [e for e in str(values["events"]).split(",") if e]
    values["owner_id"] = int(values["owner_id"])
    return WebhookEndpoint(**values)


def _delivery(row: dict[str, Any] | None) -> WebhookDelivery | None:
    if row is None:
        return None
    return WebhookDelivery(**{key: as_utc(value) for key, value in row.items()})


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
        return self._insert_endpoint("INSERT INTO", endpoint)

    def _insert_endpoint(self, verb: str, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """Write the endpoint (`INSERT INTO`, or `INSERT IGNORE INTO` to keep one already
        there) and read it back."""
        with self.db.cursor() as cur:
            cur.execute(
                f"{verb} webhook_endpoints (id, owner_id, url, events, secret, job_id) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    endpoint.id,
                    endpoint.owner_id,
                    endpoint.url,
                    ",".join(endpoint.events),
                    endpoint.secret,
                    endpoint.job_id,
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
                "AND job_id IS NULL ORDER BY created_at, id",
                (owner_id,),
            )
            return [e for e in (_endpoint(row) for row in cur.fetchall()) if e]

    def endpoints_for(self, owner_id: int, event: str) -> list[WebhookEndpoint]:
        return [
            e for e in self.list_endpoints(owner_id) if e.disabled_at is None and event in e.events
        ]

    def job_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        return self._insert_endpoint("INSERT IGNORE INTO", endpoint)

    def endpoint_of_job(self, job_id: str) -> WebhookEndpoint | None:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE job_id = %s LIMIT 1",
                (job_id,),
            )
            return _endpoint(cur.fetchone())

    def signing_secret(self, owner_id: int, new: str, replace: bool = False) -> str:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE users SET webhook_secret = %s WHERE id = %s"
                + ("" if replace else " AND webhook_secret IS NULL"),
                (new, owner_id),
            )
            cur.execute("SELECT webhook_secret FROM users WHERE id = %s", (owner_id,))
            row = cur.fetchone()
        if row is None or not row["webhook_secret"]:
            raise ValueError(f"no user {owner_id}")
        return str(row["webhook_secret"])

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
                "AND (e.job_id IS NULL OR e.job_id = j.id) "
                f"WHERE j.status IN ({', '.join(repr(s.value) for s in OUTCOME_EVENTS)}) "
                "AND j.finished_at >= %s AND j.finished_at < %s AND j.updated_at < %s "
                f"AND FIND_IN_SET({_EVENT_OF_STATUS}, e.events) "
                "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d "
                "WHERE d.endpoint_id = e.id AND d.job_id = j.id) "
                "ORDER BY j.updated_at LIMIT 500",
                (ended_after, ended_before, ended_before),
            )
            rows = list(cur.fetchall())
            # Jobs with a webhook_url of their own whose receiver got no delivery of the job
            # (its row is made when the event is emitted, so it may not exist yet either).
            cur.execute(
                "SELECT j.id, j.status, j.updated_at FROM jobs j "
                f"WHERE j.webhook_url IS NOT NULL AND j.status IN "
                f"({', '.join(repr(s.value) for s in OUTCOME_EVENTS)}) "
                "AND j.finished_at >= %s AND j.finished_at < %s AND j.updated_at < %s "
                "AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.job_id = j.id "
                "AND (e.disabled_at IS NOT NULL OR EXISTS (SELECT 1 FROM webhook_deliveries d "
                "WHERE d.endpoint_id = e.id AND d.job_id = j.id))) "
                "ORDER BY j.updated_at LIMIT 500",
                (ended_after, ended_before, ended_before),
            )
            rows += [row for row in cur.fetchall() if row["id"] not in {r["id"] for r in rows}]
            return [(row["id"], OUTCOME_EVENTS[JobStatus(row["status"])]) for row in rows]

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
        return claim_row(
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
