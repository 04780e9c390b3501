"""Schema migrations as files: `migrations/NNNN_name.sql`, applied in order under a named lock.

A file is forward-only and holds one change per statement. MySQL commits DDL at once, so a
file cannot be one transaction: each statement is recorded in `schema_migrations` as it lands
(a data statement together with its record), and a run that fails midway stops naming the
file and statement; the next run continues with that statement. An applied file must not
change: its checksum is recorded, and a run refuses, applying nothing, while a file differs.

Databases made by the in-code migrations of earlier builds (rows without a checksum) are
adopted: files 0001-0010 are the same changes in portable SQL, so their checksums are
recorded and nothing runs again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Callable

import sqlparse
from MySQLdb import InterfaceError, OperationalError

from core.adapters.mysql.db import NO_DATABASE, NO_TABLE, Error, MySQLDatabase, errno, identifier
from core.domain.errors import Unavailable
from core.ports.schema import MigrationError, SchemaMigrator

FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

# The bookkeeping of the migrations themselves: created here, not by a file (a file's run is
# recorded in it). The ALTER brings the in-code migrations' table to this shape.
TRACKING_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INT NOT NULL PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    checksum CHAR(64) NULL,
    statements_applied INT NOT NULL DEFAULT 0,
    progress_checksum CHAR(64) NULL,
    applied_at DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"""
TRACKING_UPGRADE = """ALTER TABLE schema_migrations
    ADD COLUMN checksum CHAR(64) NULL,
    ADD COLUMN statements_applied INT NOT NULL DEFAULT 0,
    ADD COLUMN progress_checksum CHAR(64) NULL,
    MODIFY applied_at DATETIME(6) NULL"""
_RECORD = (
    "INSERT INTO schema_migrations "
    "(version, name, checksum, statements_applied, progress_checksum, applied_at) "
    "VALUES (%s, %s, %s, %s, %s, {applied}) ON DUPLICATE KEY UPDATE "
    "name = %s, checksum = %s, statements_applied = %s, progress_checksum = %s, "
    "applied_at = {applied}"
)
_CREATE_DATABASE = (
    "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
)
_GET_LOCK = "SELECT GET_LOCK(%s, %s)"
_RELEASE_LOCK = "SELECT RELEASE_LOCK(%s)"
_COLUMNS = (
    "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_migrations'"
)
_SELECT_IN_CODE = "SELECT version FROM schema_migrations"
_SELECT_RECORDED = (
    "SELECT version, checksum, statements_applied, progress_checksum, "
    "applied_at IS NOT NULL FROM schema_migrations"
)
_SELECT_APPLIED = "SELECT version FROM schema_migrations WHERE applied_at IS NOT NULL"
# Every statement this module sends besides the files' (the grammar test parses them too).
BOOKKEEPING = (
    _CREATE_DATABASE.format(database="vid2mp3"),
    _GET_LOCK,
    _RELEASE_LOCK,
    _COLUMNS,
    TRACKING_TABLE,
    TRACKING_UPGRADE,
    _SELECT_IN_CODE,
    _SELECT_RECORDED,
    _SELECT_APPLIED,
    _RECORD.format(applied="UTC_TIMESTAMP(6)"),
    _RECORD.format(applied="NULL"),
)


class LockTimeout(MigrationError):
    """Another run held the migration lock for longer than MIGRATE_LOCK_SECONDS."""


@dataclass(frozen=True)
class Migration:
    """One file: its version, name, statements (without semicolons) and checksum."""

    version: int
    filename: str
    statements: tuple[str, ...]
    checksum: str

    def progress_checksum(self, count: int) -> str:
        """Checksum of the first `count` statements: a re-run continues only after those."""
        return _sha256("\n;\n".join(self.statements[:count]).encode())


@dataclass(frozen=True)
class Recorded:
    """A row of schema_migrations."""

    version: int
    checksum: str | None = None
    statements_applied: int = 0
    progress_checksum: str | None = None
    applied: bool = False


@dataclass
class Plan:
    """What a run has to do, from the files and the rows of schema_migrations."""

    current: int
    changed: list[str] = field(default_factory=list)
    adopt: list[Migration] = field(default_factory=list)
    pending: list[tuple[Migration, int]] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)

    @property
    def is_current(self) -> bool:
        return not (self.changed or self.adopt or self.pending)

    def describe_pending(self) -> list[str]:
        lines = [f"{m.filename} (applied by the in-code migrations: adopt)" for m in self.adopt]
        for migration, done in self.pending:
            total = len(migration.statements)
            lines.append(
                f"{migration.filename} ({done} of {total} statements applied)"
                if done
                else migration.filename
            )
        return lines


def split(text: str) -> list[str]:
    """The statements of a file without their semicolons; pieces of only comments dropped."""
    return [
        piece.strip()
        for piece in sqlparse.split(text, strip_semicolon=True)
        if sqlparse.format(piece, strip_comments=True).strip()
    ]


def load(directory: Traversable | None = None) -> list[Migration]:
    """The files of `directory` (default: the `migrations` package this build ships) in
    version order; MigrationError for a misnamed or empty file, a version twice or missing."""
    root = directory if directory is not None else resources.files("migrations")
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        match = FILE_NAME.fullmatch(name)
        if not match or len(name) > 64:
            raise MigrationError(
                f"migrations/{name}: name it NNNN_name.sql (digits, a-z and _, 64 characters "
                "at most)"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"migrations/{name} and {found[version].filename} have the same version"
            )
        data = entry.read_bytes()
        statements = split(data.decode("utf-8"))
        if not statements:
            raise MigrationError(f"migrations/{name} holds no statement")
        found[version] = Migration(version, name, tuple(statements), _sha256(data))
    ordered = [found[version] for version in sorted(found)]
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migrations: version {expected:04d} is missing (found {migration.filename})"
            )
    return ordered


@cache
def required_version() -> int:
    """The schema version this build needs: its last migration file's."""
    shipped = load()
    return shipped[-1].version if shipped else 0


def schema_version(db: MySQLDatabase) -> int:
    """The version the database's schema is at (0: no schema, no database): what a process
    compares with required_version() at start and in /readyz."""
    try:
        with db.cursor() as cur:
            cur.execute(_SELECT_APPLIED)
            return unbroken({int(row["version"]) for row in cur.fetchall()})
    except Error as exc:
        if errno(exc) in (NO_TABLE, NO_DATABASE):
            return 0
        raise


def unbroken(versions: set[int]) -> int:
    """The highest version v such that 1..v are all applied (0 for none)."""
    current = 0
    while current + 1 in versions:
        current += 1
    return current


def plan(migrations: list[Migration], recorded: dict[int, Recorded]) -> Plan:
    """Compare the files with the records: what changed, what to adopt, what to run from where."""
    result = Plan(current=unbroken({v for v, row in recorded.items() if row.applied}))
    shipped = {m.version for m in migrations}
    result.unknown = sorted(v for v in recorded if v not in shipped)
    for migration in migrations:
        row = recorded.get(migration.version)
        if row is None:
            result.pending.append((migration, 0))
        elif row.applied and row.checksum is None:
            result.adopt.append(migration)
        elif row.applied:
            if row.checksum != migration.checksum:
                result.changed.append(
                    f"{migration.filename} was applied and has changed since; migrations are "
                    "forward-only: restore it and put the change in a new file"
                )
        else:
            done = row.statements_applied
            if done and (
                done > len(migration.statements)
                or row.progress_checksum != migration.progress_checksum(done)
            ):
                result.changed.append(
                    f"{migration.filename}: its first {done} statement(s) were applied and have "
                    "changed since; restore them (fix only the statement that failed)"
                )
            else:
                result.pending.append((migration, done))
    return result


class SchemaMigrations(SchemaMigrator):
    """Applies and checks the migration files on the database of `db`."""

    def __init__(self, db: MySQLDatabase, lock_seconds: int, migrations: list[Migration]):
        self.db = db
        self.lock_seconds = lock_seconds
        self.migrations = migrations
        # The in-code migrations of earlier builds took the same lock.
        self.lock_name = f"{db.database}.migrate"[:64]

    @property
    def required(self) -> int:
        return self.migrations[-1].version if self.migrations else 0

    def apply(self, say: Callable[[str], None], then: Callable[[], None] | None = None) -> Plan:
        """Create the database if missing and run what is pending, then `then` (the admin
        account), all under the named lock; `say` hears one line per file. Returns the plan
        as it stands after the run."""
        database = identifier(self.db.database)
        try:
            with self.db.server_connection() as cnx:
                cur = cnx.cursor()
                cur.execute(_CREATE_DATABASE.format(database=database))
                cur.execute(f"USE `{database}`")
                cur.execute(_GET_LOCK, (self.lock_name, self.lock_seconds))
                (got,) = cur.fetchone()
                if got != 1:  # 0: timed out; NULL: an error (the lock is not ours either way)
                    raise LockTimeout(
                        f"another migration holds the lock {self.lock_name!r}: gave up after "
                        f"{self.lock_seconds} s (MIGRATE_LOCK_SECONDS); nothing applied"
                    )
                try:
                    self._ensure_table(cur)
                    todo = plan(self.migrations, self._recorded(cur))
                    if todo.changed:
                        more = (
                            f" (and {len(todo.changed) - 1} more)" if len(todo.changed) > 1 else ""
                        )
                        raise MigrationError(todo.changed[0] + more)
                    if not (todo.adopt or todo.pending):
                        say("nothing to apply")
                    for migration in todo.adopt:
                        self._record(cur, migration, len(migration.statements), finished=True)
                        say(f"adopted {migration.filename} (applied by the in-code migrations)")
                    for migration, done in todo.pending:
                        self._run(cnx, cur, migration, done)
                        say(f"applied {migration.filename} ({_statements(migration, done)})")
                    if then is not None:
                        then()
                    return plan(self.migrations, self._recorded(cur))
                finally:
                    try:
                        cur.execute(_RELEASE_LOCK, (self.lock_name,))
                        cur.fetchall()
                    except Error:  # the session is gone, and its lock with it
                        pass
        except (InterfaceError, OperationalError) as exc:
            raise Unavailable("mysql") from exc

    def status(self) -> Plan:
        """What a run would do, changing nothing and taking no lock."""
        try:
            with self.db.server_connection() as cnx:
                cur = cnx.cursor()
                try:
                    cur.execute(f"USE `{identifier(self.db.database)}`")
                except Error as exc:
                    if errno(exc) != NO_DATABASE:
                        raise
                    return plan(self.migrations, {})
                return plan(self.migrations, self._recorded(cur))
        except (InterfaceError, OperationalError) as exc:
            raise Unavailable("mysql") from exc

    # --- bookkeeping -------------------------------------------------------------------

    def _columns(self, cur: Any) -> set[str]:
        cur.execute(_COLUMNS)
        return {str(row[0]).lower() for row in cur.fetchall()}

    def _ensure_table(self, cur: Any) -> None:
        columns = self._columns(cur)
        if not columns:
            cur.execute(TRACKING_TABLE)
        elif "checksum" not in columns:  # the in-code migrations' table: version, name, date
            cur.execute(TRACKING_UPGRADE)

    def _recorded(self, cur: Any) -> dict[int, Recorded]:
        columns = self._columns(cur)
        if not columns:
            return {}
        if "checksum" not in columns:
            cur.execute(_SELECT_IN_CODE)
            return {int(v): Recorded(int(v), applied=True) for (v,) in cur.fetchall()}
        cur.execute(_SELECT_RECORDED)
        return {
            int(version): Recorded(int(version), checksum, int(done), progress, bool(applied))
            for version, checksum, done, progress, applied in cur.fetchall()
        }

    def _record(self, cur: Any, migration: Migration, done: int, finished: bool) -> None:
        row = (
            migration.filename,
            migration.checksum if finished else None,
            done,
            migration.progress_checksum(done),
        )
        applied = "UTC_TIMESTAMP(6)" if finished else "NULL"
        cur.execute(_RECORD.format(applied=applied), (migration.version, *row, *row))

    def _run(self, cnx: Any, cur: Any, migration: Migration, done: int) -> None:
        """Statements done+1.. of a file, each recorded as it lands; a data statement and its
        record commit together (DDL commits by itself in MySQL, whatever we do)."""
        total = len(migration.statements)
        for index in range(done, total):
            statement = migration.statements[index]
            cnx.begin()
            try:
                cur.execute(statement)
                if cur.description is not None:
                    cur.fetchall()
                self._record(cur, migration, index + 1, finished=index + 1 == total)
                cnx.commit()
            except Error as exc:
                try:
                    cnx.rollback()
                except Error:
                    pass  # the connection is gone; nothing of this statement was recorded
                raise MigrationError(
                    f"{migration.filename}: statement {index + 1} of {total} failed "
                    f"({_one_line(_message(exc))}): {_summary(statement)}"
                ) from exc


def _statements(migration: Migration, done: int) -> str:
    total = len(migration.statements)
    counted = f"{total} statement{'s' if total > 1 else ''}"
    return f"{counted}, continued at statement {done + 1}" if done else counted


def _message(exc: BaseException) -> str:
    """The server's words of a driver error, without its number."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return str(args[1]) if len(args) > 1 else str(exc)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _summary(statement: str) -> str:
    return _one_line(sqlparse.format(statement, strip_comments=True), limit=120)
