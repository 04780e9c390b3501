"""The upload_links table: parameterized SQL only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.mysql.rows import as_utc
from core.domain.upload_links import UploadLink
from core.ports.upload_links import UploadLinkRepository

COLUMNS = (
    "id, owner_id, token_hash, options, max_bytes, allow_download, tag, webhook_url, expires_at, "
    "used_at, job_id, upload_id, deleted_at, created_at"
)


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


def _link(row: dict[str, Any] | None) -> UploadLink | None:
    if row is None:
        return None
    values = {key: as_utc(value) for key, value in row.items()}
    values["owner_id"] = int(values["owner_id"])
    values["token_hash"] = bytes(values["token_hash"])
    values["options"] = json.loads(values["options"] or "{}")
    values["allow_download"] = bool(values["allow_download"])
    values["max_bytes"] = int(values["max_bytes"])
    return UploadLink(**values)


class MySQLUploadLinkRepository(UploadLinkRepository):
    def __init__(self, db: MySQLDatabase):
        self.db = db

    def add(self, link: UploadLink) -> UploadLink:
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO upload_links (id, owner_id, token_hash, options, max_bytes, "
                "allow_download, tag, webhook_url, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    link.id,
                    link.owner_id,
                    link.token_hash,
                    json.dumps(link.options),
                    link.max_bytes,
                    link.allow_download,
                    link.tag,
                    link.webhook_url,
                    _naive(link.expires_at),
                ),
            )
        added = self.get(link.id)
        assert added is not None
        return added

    def get(self, link_id: str) -> UploadLink | None:
        with self.db.cursor() as cur:
            cur.execute(f"SELECT {COLUMNS} FROM upload_links WHERE id = %s", (link_id,))
            return _link(cur.fetchone())

    def find(self, token_hash: bytes) -> UploadLink | None:
        with self.db.cursor() as cur:
            cur.execute(f"SELECT {COLUMNS} FROM upload_links WHERE token_hash = %s", (token_hash,))
            return _link(cur.fetchone())

    def list(self, owner_id: int) -> list[UploadLink]:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {COLUMNS} FROM upload_links WHERE owner_id = %s AND deleted_at IS NULL "
                "ORDER BY created_at DESC, id LIMIT 1000",
                (owner_id,),
            )
            return [link for link in map(_link, cur.fetchall()) if link is not None]

    def count_open(self, owner_id: int, now: datetime) -> int:
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) AS n FROM upload_links WHERE owner_id = %s AND deleted_at IS NULL "
                "AND job_id IS NULL AND expires_at > %s",
                (owner_id, _naive(now)),
            )
            return int(cur.fetchone()["n"])

    def delete(self, link_id: str, now: datetime) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE upload_links SET deleted_at = %s WHERE id = %s AND deleted_at IS NULL",
                (_naive(now), link_id),
            )
            return bool(cur.rowcount)

    def claim(
        self, link_id: str, now: datetime, stale_before: datetime, resumable_stale_before: datetime
    ) -> bool:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE upload_links SET used_at = %s, upload_id = NULL WHERE id = %s "
                "AND deleted_at IS NULL AND job_id IS NULL AND expires_at > %s AND ("
                "used_at IS NULL OR (upload_id IS NULL AND used_at < %s) "
                "OR (upload_id IS NOT NULL AND used_at < %s))",
                (
                    _naive(now),
                    link_id,
                    _naive(now),
                    _naive(stale_before),
                    _naive(resumable_stale_before),
                ),
            )
            return bool(cur.rowcount == 1)

    def attach(self, link_id: str, upload_id: str, now: datetime) -> None:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE upload_links SET upload_id = %s, used_at = %s WHERE id = %s "
                "AND job_id IS NULL",
                (upload_id, _naive(now), link_id),
            )

    def complete(self, link_id: str, job_id: str) -> None:
        with self.db.cursor() as cur:
            cur.execute("UPDATE upload_links SET job_id = %s WHERE id = %s", (job_id, link_id))

    def release(self, link_id: str) -> None:
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE upload_links SET used_at = NULL, upload_id = NULL WHERE id = %s "
                "AND job_id IS NULL",
                (link_id,),
            )
