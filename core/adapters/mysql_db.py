"""MySQL connections: one lazily created pool per process, schema migrations, error mapping."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import mysql.connector
from mysql.connector import errorcode, errors, pooling

from core.domain import Conflict, Unavailable

log = logging.getLogger(__name__)

# Versioned, idempotent migrations: each runs once, recorded in schema_migrations.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "users",
        [
            """CREATE TABLE IF NOT EXISTS users (
            id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(64) NOT NULL,
            email VARCHAR(254) NOT NULL,
            phone VARCHAR(32) NULL,
            role ENUM('user','admin') NOT NULL DEFAULT 'user',
            password_hash VARCHAR(255) NOT NULL,
            token_version INT UNSIGNED NOT NULL DEFAULT 0,
            created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
            updated_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
            UNIQUE KEY uq_users_name (name),
            UNIQUE KEY uq_users_email (email)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
        ],
    ),
    (
        2,
        "jobs",
        [
            """CREATE TABLE IF NOT EXISTS jobs (
            id CHAR(32) NOT NULL PRIMARY KEY,
            owner_id BIGINT UNSIGNED NOT NULL,
            status ENUM('queued','converting','done','failed') NOT NULL,
            progress DOUBLE NOT NULL DEFAULT 0,
            error VARCHAR(1000) NULL,
            video_fid VARCHAR(64) NOT NULL,
            video_filename VARCHAR(255) NOT NULL,
            video_size BIGINT UNSIGNED NOT NULL,
            bitrate VARCHAR(8) NOT NULL,
            mp3_fid VARCHAR(64) NULL,
            mp3_size BIGINT UNSIGNED NULL,
            duration_s DOUBLE NULL,
            attempts INT UNSIGNED NOT NULL DEFAULT 0,
            created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
            updated_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
            started_at DATETIME(6) NULL,
            finished_at DATETIME(6) NULL,
            notified_at DATETIME(6) NULL,
            notify_error VARCHAR(1000) NULL,
            KEY ix_jobs_owner_created (owner_id, created_at),
            KEY ix_jobs_status_updated (status, updated_at),
            CONSTRAINT fk_jobs_owner FOREIGN KEY (owner_id) REFERENCES users (id)
                ON DELETE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
        ],
    ),
    (
        3,
        "job leases",
        [
            """ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_id CHAR(32) NULL,
           ADD COLUMN IF NOT EXISTS lease_expires_at DATETIME(6) NULL""",
            "CREATE INDEX IF NOT EXISTS ix_jobs_status_lease ON jobs (status, lease_expires_at)",
        ],
    ),
    (
        4,
        "jobs.request_id",
        [
            "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS request_id VARCHAR(128) NULL",
        ],
    ),
    (
        5,
        "cancel and retention",
        [
            """ALTER TABLE jobs MODIFY status ENUM('queued','converting','done','failed',
               'cancelled','expired') NOT NULL,
           MODIFY video_fid VARCHAR(64) NULL,
           ADD COLUMN IF NOT EXISTS expires_at DATETIME(6) NULL""",
            "CREATE INDEX IF NOT EXISTS ix_jobs_status_expires ON jobs (status, expires_at)",
        ],
    ),
    (
        6,
        "webhooks",
        [
            """CREATE TABLE IF NOT EXISTS webhook_endpoints (
            id CHAR(32) NOT NULL PRIMARY KEY,
            owner_id BIGINT UNSIGNED NOT NULL,
            url VARCHAR(2000) NOT NULL,
            events VARCHAR(200) NOT NULL,
            secret VARCHAR(100) NOT NULL,
            disabled_at DATETIME(6) NULL,
            created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
            KEY ix_webhook_endpoints_owner (owner_id),
            CONSTRAINT fk_webhook_endpoints_owner FOREIGN KEY (owner_id) REFERENCES users (id)
                ON DELETE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
            """CREATE TABLE IF NOT EXISTS webhook_deliveries (
            id CHAR(32) NOT NULL PRIMARY KEY,
            endpoint_id CHAR(32) NOT NULL,
            job_id CHAR(32) NOT NULL,
            event VARCHAR(32) NOT NULL,
            body MEDIUMTEXT NOT NULL,
            attempts INT UNSIGNED NOT NULL DEFAULT 0,
            last_status INT NULL,
            last_error VARCHAR(200) NULL,
            next_retry_at DATETIME(6) NULL,
            delivered_at DATETIME(6) NULL,
            failed_at DATETIME(6) NULL,
            created_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
            UNIQUE KEY uq_webhook_deliveries_event (endpoint_id, job_id, event),
            CONSTRAINT fk_webhook_deliveries_endpoint FOREIGN KEY (endpoint_id)
                REFERENCES webhook_endpoints (id) ON DELETE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
        ],
    ),
    (
        7,
        "jobs.options, source, mode and notes",
        [
            """ALTER TABLE jobs ADD COLUMN IF NOT EXISTS options JSON NULL,
           ADD COLUMN IF NOT EXISTS source JSON NULL,
           ADD COLUMN IF NOT EXISTS mode VARCHAR(8) NULL,
           ADD COLUMN IF NOT EXISTS notes JSON NULL""",
        ],
    ),
    (
        8,
        "jobs.notify_holder, notify_until: one email sender",
        [
            """ALTER TABLE jobs ADD COLUMN IF NOT EXISTS notify_holder VARCHAR(64) NULL,
           ADD COLUMN IF NOT EXISTS notify_until DATETIME(6) NULL""",
        ],
    ),
    (
        9,
        "jobs.lease_holder: which process runs the attempt",
        ["ALTER TABLE jobs ADD COLUMN IF NOT EXISTS lease_holder VARCHAR(400) NULL"],
    ),
    (
        10,
        "delivery claims; jobs by status and finished_at",
        [
            """ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS holder VARCHAR(64) NULL,
           ADD COLUMN IF NOT EXISTS held_until DATETIME(6) NULL""",
            "CREATE INDEX IF NOT EXISTS ix_jobs_status_finished ON jobs (status, finished_at)",
        ],
    ),
    (
        12,
        "quota_holds: the room uploads take while their bytes arrive",
        [
            """CREATE TABLE IF NOT EXISTS quota_holds (
            id CHAR(32) NOT NULL PRIMARY KEY,
            owner_id BIGINT UNSIGNED NOT NULL,
            bytes BIGINT UNSIGNED NOT NULL,
            jobs TINYINT UNSIGNED NOT NULL DEFAULT 0,
            expires_at DATETIME(6) NOT NULL,
            created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)),
            KEY ix_quota_holds_owner_expires (owner_id, expires_at),
            CONSTRAINT fk_quota_holds_owner FOREIGN KEY (owner_id) REFERENCES users (id)
                ON DELETE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
        ],
    ),
]

_UNAVAILABLE = (errors.InterfaceError, errors.OperationalError, errors.PoolError)
# Refused at the handshake because the server is out of connections: an outage, retried,
# not a bug (mysql-connector raises these as a plain DatabaseError).
_SERVER_FULL = (errorcode.ER_CON_COUNT_ERROR, errorcode.ER_TOO_MANY_USER_CONNECTIONS)


class MySQLDatabase:
    """Owns the per-process pool. The schema is created by `migrate()`, once, at start-up."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        pool_size: int = 5,
        connect_timeout: int = 3,
    ):
        self._config = dict(
            host=host,
            port=port,
            user=user,
            password=password,
            connection_timeout=connect_timeout,
            autocommit=True,
            charset="utf8mb4",
            collation="utf8mb4_unicode_ci",
        )
        self.database = database
        self._pool_size = pool_size
        self._pool: pooling.MySQLConnectionPool | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> pooling.MySQLConnectionPool:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = pooling.MySQLConnectionPool(
                    pool_name=f"vid2mp3_{os.getpid()}_{id(self)}",
                    pool_size=self._pool_size,
                    pool_reset_session=False,
                    database=self.database,
                    **self._config,
                )
                self._pid = os.getpid()
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled connection, returned on exit; outages become Unavailable('mysql')."""
        try:
            cnx = self._get_pool().get_connection()
        except _UNAVAILABLE as exc:
            raise Unavailable("mysql") from exc
        except errors.DatabaseError as exc:
            if exc.errno in _SERVER_FULL:
                raise Unavailable("mysql") from exc
            raise
        try:
            yield cnx
        except errors.IntegrityError as exc:
            if exc.errno == errorcode.ER_DUP_ENTRY:
                raise Conflict(_duplicate_message(str(exc))) from None
            raise
        except _UNAVAILABLE as exc:
            raise Unavailable("mysql") from exc
        finally:
            try:
                cnx.close()
            except Exception:  # a dead connection still goes back to the pool, to reconnect
                log.debug("closing a broken MySQL connection", exc_info=True)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        with self.connection() as cnx:
            cur = cnx.cursor(dictionary=True)
            try:
                yield cur
            finally:
                cur.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one READ COMMITTED transaction: committed when the block ends,
        rolled back when it raises. Each statement sees what others committed before it,
        so a row lock taken first (SELECT ... FOR UPDATE) orders the checks that follow."""
        with self.connection() as cnx:
            cnx.start_transaction(isolation_level="READ COMMITTED")
            cur = cnx.cursor(dictionary=True)
            try:
                yield cur
                cnx.commit()
            except BaseException:
                try:
                    cnx.rollback()
                except Exception:  # the connection is gone: the server rolled back already
                    log.debug("rolling back on a broken MySQL connection", exc_info=True)
                raise
            finally:
                cur.close()

    def migrate(self) -> None:
        """Create the database if missing and apply pending migrations, under a named lock."""
        try:
            cnx = mysql.connector.connect(**self._config)
        except _UNAVAILABLE as exc:
            raise Unavailable("mysql") from exc
        except errors.DatabaseError as exc:
            if exc.errno in _SERVER_FULL:
                raise Unavailable("mysql") from exc
            raise
        try:
            cur = cnx.cursor()
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{_ident(self.database)}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cur.execute(f"USE `{_ident(self.database)}`")
            cur.execute("SELECT GET_LOCK(%s, 30)", (f"{self.database}.migrate",))
            cur.fetchall()
            try:
                cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INT PRIMARY KEY, name VARCHAR(64) NOT NULL,
                    applied_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6))""")
                cur.execute("SELECT version FROM schema_migrations")
                applied = {row[0] for row in cur.fetchall()}  # type: ignore[index]
                for version, name, statements in MIGRATIONS:
                    if version in applied:
                        continue
                    for statement in statements:
                        cur.execute(statement)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                    log.info("applied migration %s (%s)", version, name)
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (f"{self.database}.migrate",))
                cur.fetchall()
                cur.close()
        except _UNAVAILABLE as exc:
            raise Unavailable("mysql") from exc
        finally:
            cnx.close()

    def close(self) -> None:
        """Close this process's pooled connections; the next use opens new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            try:
                pool._remove_connections()  # the public API has no other way to empty a pool
            except errors.Error:
                log.debug("closing pooled MySQL connections", exc_info=True)

    def ping(self) -> None:
        with self.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return name


def _duplicate_message(text: str) -> str:
    for column in ("name", "email"):
        if f"uq_users_{column}" in text:
            return f"that {column} is taken"
    return "already exists"
