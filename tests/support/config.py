"""Settings for test runs: throwaway names per run, test-only secrets, real local services."""

from __future__ import annotations

import os
import uuid
from typing import Any

RUN_ID = uuid.uuid4().hex[:10]

TEST_ENV: dict[str, str] = {
    "JWT_SECRET": "test-only-secret-" + "x" * 32,
    "ADMIN_EMAIL": "admin@example.com",
    "ADMIN_PASSWORD": "admin-password-1",
    "MYSQL_HOST": os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    "MYSQL_PORT": os.environ.get("TEST_MYSQL_PORT", "3306"),
    "MYSQL_USER": os.environ.get("TEST_MYSQL_USER", "root"),
    "MYSQL_PASSWORD": os.environ.get("TEST_MYSQL_PASSWORD", ""),
    "MYSQL_DATABASE": f"vid2mp3_test_{RUN_ID}",
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "REDIS_PREFIX": f"vid2mp3-test-{RUN_ID}:",
    "CELERY_BROKER_URL": os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/1"),
    "CELERY_KEY_PREFIX": f"vid2mp3-test-{RUN_ID}:",
    "LOG_LEVEL": "WARNING",
}


def service_env(**extra: Any) -> dict[str, str]:
    """The test environment plus overrides, all as strings (for child processes too)."""
    env = dict(TEST_ENV)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def drop_database(settings) -> None:
    """Remove a run's whole throwaway database: test teardown only."""
    import MySQLdb

    if not settings.mysql_database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {settings.mysql_database!r}")
    cnx = MySQLdb.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
    )
    try:
        cur = cnx.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS `{settings.mysql_database}`")
        cur.close()
    finally:
        cnx.close()


def migrate(settings) -> None:
    """`python -m core.migrate` in this process: the schema and the admin account."""
    from core.migrate import run

    failures: list[str] = []
    assert run(settings, say=lambda line: None, fail=failures.append) == 0, failures


def cleanup(built) -> None:
    """Drop the run's database and delete only the keys under the run's prefixes."""
    from core.adapters.redis.client import redis_client

    drop_database(built.settings)
    settings = built.settings
    for url, prefix in (
        (settings.redis_url, settings.redis_prefix),
        (settings.celery_broker_url, settings.celery_key_prefix),
    ):
        if not prefix:
            continue
        client = redis_client(url)
        for key in client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=500):
            client.delete(key)
        client.close()
