"""The schema as the in-code migrations of earlier builds made it (core/adapters/mysql_db.py up
to the migration files), frozen here: the upgrade tests and the benchmark start from a database
it created, with rows in it, as a deployed one is. MariaDB only (its SQL is not portable)."""

from __future__ import annotations

import MySQLdb

# Copied verbatim from core/adapters/mysql_db.py before the migrations became files.
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
]


def create_legacy_schema(settings) -> None:
    """Create the database and apply MIGRATIONS as the old `MySQLDatabase.migrate()` did:
    schema_migrations (version, name, applied_at), one row per version, no checksum."""
    database = settings.mysql_database
    assert database.replace("_", "").isalnum(), database
    cnx = MySQLdb.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
        autocommit=True,
    )
    try:
        cur = cnx.cursor()
        cur.execute(
            f"CREATE DATABASE IF NOT EXISTS `{database}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        cur.execute(f"USE `{database}`")
        cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version INT PRIMARY KEY, name VARCHAR(64) NOT NULL,
            applied_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6))""")
        for version, name, statements in MIGRATIONS:
            for statement in statements:
                cur.execute(statement)
            cur.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
            )
        cur.close()
    finally:
        cnx.close()
