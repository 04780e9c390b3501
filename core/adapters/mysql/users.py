"""The users table: accounts, parameterized SQL only."""

from __future__ import annotations

from typing import Any

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.mysql.rows import as_utc
from core.domain.accounts import NewUser, Role, User
from core.ports.accounts import USER_FIELDS_UPDATABLE, UserRepository

USER_COLUMNS = (
    "id, name, email, phone, role, password_hash, token_version, created_at, "
    "pending_email, email_confirmed_at"
)


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
        created_at=as_utc(row["created_at"]),
        pending_email=row["pending_email"],
        email_confirmed=row["email_confirmed_at"] is not None,
    )


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
