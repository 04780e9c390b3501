"""The api_keys table: parameterized SQL only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.mysql.rows import as_utc
from core.domain.api_keys import ApiKey, KeyHolder
from core.ports.api_keys import ApiKeyRepository

COLUMNS = "k.id, k.owner_id, k.name, k.prefix, k.secret_hash, k.scopes, k.created_at, "
COLUMNS += "k.expires_at, k.last_used_at"


def _key(row: dict[str, Any]) -> ApiKey:
    values = {key: as_utc(value) for key, value in row.items() if key != "role"}
    values["owner_id"] = int(values["owner_id"])
    values["secret_hash"] = bytes(values["secret_hash"])
    values["scopes"] = frozenset(s for s in str(values["scopes"]).split(",") if s)
    return ApiKey(**values)


class MySQLApiKeyRepository(ApiKeyRepository):
    def __init__(self, db: MySQLDatabase):
        self.db = db

    def add(self, key: ApiKey) -> ApiKey:
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO api_keys (id, owner_id, name, prefix, secret_hash, scopes, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    key.id,
                    key.owner_id,
                    key.name,
                    key.prefix,
                    key.secret_hash,
                    ",".join(sorted(key.scopes)),
                    key.expires_at.replace(tzinfo=None) if key.expires_at else None,
                ),
            )
        added = self.get(key.id)
        assert added is not None
        return added

    def get(self, key_id: str) -> ApiKey | None:
        with self.db.cursor() as cur:
            cur.execute(f"SELECT {COLUMNS} FROM api_keys k WHERE k.id = %s", (key_id,))
            row = cur.fetchone()
        return _key(row) if row else None

    def find(self, prefix: str) -> KeyHolder | None:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {COLUMNS}, u.role FROM api_keys k JOIN users u ON u.id = k.owner_id "
                "WHERE k.prefix = %s",
                (prefix,),
            )
            row = cur.fetchone()
        return KeyHolder(_key(row), str(row["role"])) if row else None

    def list(self, owner_id: int) -> list[ApiKey]:
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {COLUMNS} FROM api_keys k WHERE k.owner_id = %s "
                "ORDER BY k.created_at, k.id",
                (owner_id,),
            )
            return [_key(row) for row in cur.fetchall()]

    def count(self, owner_id: int) -> int:
        with self.db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM api_keys WHERE owner_id = %s", (owner_id,))
            return int(cur.fetchone()["n"])

    def delete(self, key_id: str) -> bool:
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM api_keys WHERE id = %s", (key_id,))
            return bool(cur.rowcount)

    def touch(self, key_id: str, now: datetime, every_seconds: int) -> None:
        naive = now.replace(tzinfo=None)
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE api_keys SET last_used_at = %s WHERE id = %s AND "
                "(last_used_at IS NULL OR last_used_at <= %s - INTERVAL %s SECOND)",
                (naive, key_id, naive, every_seconds),
            )
