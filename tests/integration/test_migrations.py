"""`python -m core.migrate` on a real MariaDB, as a process: the files in order, the named lock,
a changed file, a statement failing midway, and a database the in-code migrations made."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import MySQLdb
import pytest

from core.adapters.mysql.migrations import load
from core.settings import Settings
from tests.support.config import drop_database, service_env
from tests.support.legacy_schema import MIGRATIONS as IN_CODE_MIGRATIONS
from tests.support.legacy_schema import create_legacy_schema
from tests.support.wait import scaled, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = load()
LAST = SHIPPED[-1].version
TABLES = ("users", "jobs", "webhook_endpoints", "webhook_deliveries")


@pytest.fixture
def env(tmp_path):
    """Settings of a throwaway database, dropped after the test."""
    values = service_env(MYSQL_DATABASE=f"vid2mp3_mig_{uuid.uuid4().hex[:10]}")
    yield values
    drop_database(Settings.from_env(values, dotenv_path=None))


@pytest.fixture
def files(tmp_path):
    """A copy of the shipped migrations to add to or break (--migrations-dir)."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in (ROOT / "migrations").glob("*.sql"):
        shutil.copy(path, directory)
    return directory


def migrate_process(env: dict[str, str], *args: str, cwd: Path) -> subprocess.Popen:
    # run outside the checkout, so a developer's .env cannot fill anything in
    return subprocess.Popen(
        [sys.executable, "-m", "core.migrate", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def migrate(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    process = migrate_process(env, *args, cwd=cwd)
    out, err = process.communicate(timeout=scaled(120))
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def connect(env: dict[str, str], database: bool = True):
    return MySQLdb.connect(
        host=env["MYSQL_HOST"],
        port=int(env["MYSQL_PORT"]),
        user=env["MYSQL_USER"],
        password=env["MYSQL_PASSWORD"],
        autocommit=True,
        **({"database": env["MYSQL_DATABASE"]} if database else {}),
    )


def query(env: dict[str, str], sql: str, params: tuple = ()) -> list[tuple]:
    cnx = connect(env)
    try:
        cur = cnx.cursor()
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        cnx.close()


def columns(env: dict[str, str], table: str) -> list[str]:
    return [row[0] for row in query(env, f"SHOW COLUMNS FROM {table}")]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def applied_lines(output: str) -> list[str]:
    return [line.split()[1] for line in output.splitlines() if line.startswith("applied ")]


# --- a new database ------------------------------------------------------------------------


def test_an_empty_database_gets_every_file_in_order_and_the_admin(env, tmp_path):
    result = migrate(env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert applied_lines(result.stdout) == [m.filename for m in SHIPPED]
    assert f"created the admin account {env['ADMIN_EMAIL']}" in result.stdout
    assert result.stdout.strip().endswith(f"schema is at {LAST}")
    rows = query(
        env, "SELECT version, name, checksum, applied_at IS NOT NULL FROM schema_migrations"
    )
    assert sorted(rows) == [(m.version, m.filename, m.checksum, 1) for m in SHIPPED]
    assert query(env, "SELECT role FROM users WHERE email = %s", (env["ADMIN_EMAIL"],)) == [
        ("admin",)
    ]

    again = migrate(env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to apply" in again.stdout and "created" not in again.stdout
    check = migrate(env, "--check", cwd=tmp_path)
    assert check.returncode == 0 and f"schema is at {LAST}: nothing pending" in check.stdout


def test_check_changes_nothing_and_lists_what_is_pending(env, tmp_path):
    result = migrate(env, "--check", cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(f"schema is at 0, this build needs {LAST}: run the migration; pending: ")
    assert line.endswith(", ".join(m.filename for m in SHIPPED))
    cnx = connect(env, database=False)
    try:
        cur = cnx.cursor()
        cur.execute("SHOW DATABASES LIKE %s", (env["MYSQL_DATABASE"],))
        assert not cur.fetchall(), "--check created the database"
    finally:
        cnx.close()


def test_mysql_out_of_reach_is_one_line(env, tmp_path):
    from devtools.processes import free_port

    result = migrate({**env, "MYSQL_PORT": str(free_port())}, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        one_line(result.stderr).startswith("MySQL at 127.0.0.1:")
        and "not reachable" in result.stderr
    )


# --- changed files, failing statements -----------------------------------------------------


def test_an_applied_file_that_changed_stops_the_run_naming_it(env, tmp_path, files):
    assert migrate(env, "--migrations-dir", str(files), cwd=tmp_path).returncode == 0
    jobs = files / "0002_jobs.sql"
    jobs.write_text(jobs.read_text().replace("bitrate VARCHAR(8)", "bitrate VARCHAR(16)"))
    (files / f"{LAST + 1:04d}_jobs_x.sql").write_text("ALTER TABLE jobs ADD COLUMN x INT NULL;\n")

    result = migrate(env, "--migrations-dir", str(files), cwd=tmp_path)
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("0002_jobs.sql was applied and has changed since")
    assert "x" not in columns(env, "jobs"), "a file ran although an applied one had changed"
    check = migrate(env, "--check", "--migrations-dir", str(files), cwd=tmp_path)
    assert check.returncode == 1 and "0002_jobs.sql was applied and has changed" in check.stderr


def test_a_statement_failing_midway_stops_naming_it_and_a_rerun_continues(env, tmp_path, files):
    broken = files / f"{LAST + 1:04d}_jobs_a_b.sql"
    broken.write_text(
        "ALTER TABLE jobs ADD COLUMN a INT NULL;\n"
        "ALTER TABLE jobs_typo ADD COLUMN b INT NULL;\n"
        "CREATE INDEX ix_jobs_a_b ON jobs (a, b);\n"
    )
    result = migrate(env, "--migrations-dir", str(files), cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert line.startswith(f"{broken.name}: statement 2 of 3 failed (")
    assert line.endswith("): ALTER TABLE jobs_typo ADD COLUMN b INT NULL")
    assert "a" in columns(env, "jobs") and "b" not in columns(env, "jobs")
    assert query(
        env,
        "SELECT statements_applied, applied_at FROM schema_migrations WHERE version = %s",
        (LAST + 1,),
    ) == [(1, None)]
    check = migrate(env, "--check", "--migrations-dir", str(files), cwd=tmp_path)
    assert check.returncode == 1
    assert f"pending: {broken.name} (1 of 3 statements applied)" in check.stderr

    broken.write_text(broken.read_text().replace("jobs_typo", "jobs"))
    rerun = migrate(env, "--migrations-dir", str(files), cwd=tmp_path)
    # statement 1 ran again would fail: the column exists
    assert rerun.returncode == 0, rerun.stderr
    assert f"applied {broken.name} (3 statements, continued at statement 2)" in rerun.stdout
    assert {"a", "b"} <= set(columns(env, "jobs"))
    assert query(env, "SHOW INDEX FROM jobs WHERE Key_name = 'ix_jobs_a_b'")


def test_a_data_change_and_its_record_commit_together(env, tmp_path, files, monkeypatch):
    """The connection drops between an UPDATE and its record: the UPDATE is not kept, so the
    re-run applies it once, not twice."""
    from core.adapters.mysql import migrations as mysql_migrations
    from core.adapters.mysql.db import MySQLDatabase
    from core.adapters.mysql.migrations import SchemaMigrations
    from core.ports.schema import MigrationError

    assert migrate(env, "--migrations-dir", str(files), cwd=tmp_path).returncode == 0
    bump = files / f"{LAST + 1:04d}_users_bump.sql"
    bump.write_text("UPDATE users SET token_version = token_version + 1;\n")
    settings = Settings.from_env(env, dotenv_path=None)
    db = MySQLDatabase(
        settings.mysql_host,
        settings.mysql_port,
        settings.mysql_user,
        settings.mysql_password,
        settings.mysql_database,
    )
    runner = SchemaMigrations(db, 5, load(files))
    record = mysql_migrations.SchemaMigrations._record

    def dropped(self, cur, migration, done, finished):
        if migration.filename == bump.name:
            raise MySQLdb.OperationalError(2013, "Lost connection (injected)")
        record(self, cur, migration, done, finished)

    monkeypatch.setattr(mysql_migrations.SchemaMigrations, "_record", dropped)
    with pytest.raises(MigrationError, match=f"{bump.name}: statement 1 of 1 failed"):
        runner.apply(lambda line: None)
    assert query(env, "SELECT token_version FROM users") == [(0,)]
    monkeypatch.setattr(mysql_migrations.SchemaMigrations, "_record", record)
    rerun = migrate(env, "--migrations-dir", str(files), cwd=tmp_path)
    assert rerun.returncode == 0 and f"applied {bump.name}" in rerun.stdout
    assert query(env, "SELECT token_version FROM users") == [(1,)]


# --- the lock --------------------------------------------------------------------------------


class HeldLock:
    """The migration lock, taken by this test on a connection of its own."""

    def __init__(self, env: dict[str, str]):
        self.name = f"{env['MYSQL_DATABASE']}.migrate"
        self.cnx = connect(env, database=False)
        cur = self.cnx.cursor()
        cur.execute("SELECT GET_LOCK(%s, 0)", (self.name,))
        assert list(cur.fetchall()) == [(1,)]

    def waiters(self) -> int:
        cur = self.cnx.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
            (f"SELECT GET_LOCK('{self.name}'%",),
        )
        return int(cur.fetchall()[0][0])

    def release(self) -> None:
        self.cnx.close()


def test_a_lock_held_longer_than_the_limit_stops_the_run_applying_nothing(env, tmp_path):
    lock = HeldLock(env)
    try:
        result = migrate({**env, "MIGRATE_LOCK_SECONDS": "1"}, cwd=tmp_path)
    finally:
        lock.release()
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"another migration holds the lock '{lock.name}': gave up after 1 s "
        "(MIGRATE_LOCK_SECONDS); nothing applied"
    )
    assert result.stdout == ""
    assert query(env, "SHOW TABLES") == [], "tables were created without the lock"


def test_two_runs_at_once_exactly_one_applies(env, tmp_path):
    """Both wait on the lock this test holds; released, one applies, then the other finds
    nothing to do."""
    lock = HeldLock(env)
    runs = []
    try:
        runs = [migrate_process(env, cwd=tmp_path) for _ in range(2)]
        wait_for(lambda: lock.waiters() == 2, timeout=60, interval=0.1, what="both runs to wait")
    finally:
        lock.release()
    outputs = [run.communicate(timeout=scaled(120)) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    applied = [applied_lines(out) for out, _ in outputs]
    assert sorted(applied, key=len) == [[], [m.filename for m in SHIPPED]]
    assert sum("nothing to apply" in out for out, _ in outputs) == 1
    assert sum("created the admin account" in out for out, _ in outputs) == 1
    assert query(env, "SELECT COUNT(*) FROM schema_migrations") == [(LAST,)]


# --- a database of the in-code migrations ----------------------------------------------------


def _fill(env: dict[str, str]) -> None:
    """Rows as a deployed database holds them: users, jobs in every state, webhooks."""
    cnx = connect(env)
    try:
        cur = cnx.cursor()
        cur.execute(
            "INSERT INTO users (name, email, role, password_hash) VALUES "
            "('admin', %s, 'admin', 'h'), ('ann', 'ann@example.com', 'user', 'h')",
            (env["ADMIN_EMAIL"],),
        )
        for i, status in enumerate(("queued", "converting", "done", "failed", "cancelled")):
            cur.execute(
                "INSERT INTO jobs (id, owner_id, status, video_fid, video_filename, video_size, "
                "bitrate, options, lease_holder, finished_at) VALUES "
                "(%s, 2, %s, 'fid', 'clip.mp4', 123, '192k', '{\"quality\": 2}', 'host:1:2', "
                "UTC_TIMESTAMP(6))",
                (f"{i:032d}", status),
            )
        cur.execute(
            "INSERT INTO webhook_endpoints (id, owner_id, url, events, secret) VALUES "
            "(%s, 2, 'https://example.com/hook', 'job.done', 'whsec_x')",
            ("e" * 32,),
        )
        cur.execute(
            "INSERT INTO webhook_deliveries (id, endpoint_id, job_id, event, body, holder) VALUES "
            "(%s, %s, %s, 'job.done', '{}', 'worker-1')",
            ("d" * 32, "e" * 32, f"{2:032d}"),
        )
    finally:
        cnx.close()


def _rows(env: dict[str, str]) -> dict[str, list[tuple]]:
    return {table: sorted(query(env, f"SELECT * FROM {table}"), key=str) for table in TABLES}


def test_a_database_of_the_in_code_migrations_is_adopted_with_its_rows(env, tmp_path, files):
    settings = Settings.from_env(env, dotenv_path=None)
    create_legacy_schema(settings)
    _fill(env)
    before = _rows(env)
    assert query(env, "SELECT COUNT(*) FROM schema_migrations") == [(len(IN_CODE_MIGRATIONS),)]
    # a build with one more migration than the in-code list had
    new = files / f"{LAST + 1:04d}_jobs_x.sql"
    new.write_text("ALTER TABLE jobs ADD COLUMN x INT NULL;\nCREATE INDEX ix_jobs_x ON jobs (x);\n")

    result = migrate(env, "--migrations-dir", str(files), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    adopted = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("adopted")]
    in_code = len(IN_CODE_MIGRATIONS)
    assert adopted == [m.filename for m in SHIPPED[:in_code]]
    assert applied_lines(result.stdout) == [m.filename for m in SHIPPED[in_code:]] + [new.name]
    assert "created the admin account" not in result.stdout  # it was there
    after = _rows(env)
    for table in TABLES:  # columns the shipped files added since come last
        width = len(before[table][0])
        assert [row[:width] for row in after[table]] == before[table], table
    assert {row[-1] for row in after["jobs"]} == {None}  # the new column, NULL for old rows
    recorded = dict(query(env, "SELECT version, checksum FROM schema_migrations"))
    assert recorded == {m.version: m.checksum for m in load(files)}

    from core.adapters.mysql.db import MySQLDatabase
    from core.adapters.mysql.migrations import schema_version

    db = MySQLDatabase(
        settings.mysql_host,
        settings.mysql_port,
        settings.mysql_user,
        settings.mysql_password,
        settings.mysql_database,
    )
    try:
        assert schema_version(db) == LAST + 1
    finally:
        db.close()
    again = migrate(env, "--migrations-dir", str(files), cwd=tmp_path)
    assert again.returncode == 0 and "nothing to apply" in again.stdout


def test_the_files_make_the_schema_the_in_code_migrations_made(env, tmp_path):
    """Why adopting is safe: the same tables, columns, types, defaults, keys and indexes."""
    legacy_env = {**env, "MYSQL_DATABASE": env["MYSQL_DATABASE"] + "_old"}
    legacy = Settings.from_env(legacy_env, dotenv_path=None)
    create_legacy_schema(legacy)
    same_versions = tmp_path / "same"  # the files of the versions the in-code list had
    same_versions.mkdir()
    for migration in SHIPPED[: len(IN_CODE_MIGRATIONS)]:
        shutil.copy(ROOT / "migrations" / migration.filename, same_versions)
    try:
        assert migrate(env, "--migrations-dir", str(same_versions), cwd=tmp_path).returncode == 0
        for table in TABLES:
            ((_, made_by_files),) = query(env, f"SHOW CREATE TABLE {table}")
            ((_, made_in_code),) = query(legacy_env, f"SHOW CREATE TABLE {table}")
            # the admin account the migration created moved the counter on
            made_by_files = re.sub(r" AUTO_INCREMENT=\d+", "", made_by_files)
            assert made_by_files == made_in_code, table
    finally:
        drop_database(legacy)
