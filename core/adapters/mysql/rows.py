"""What the MySQL repositories share: UTC datetimes from rows, and claim columns."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from core.adapters.mysql.db import MySQLDatabase


def as_utc(value: Any) -> Any:
    """MySQL hands back naive datetimes; they are UTC."""
    return value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) else value


def claim_row(
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
