"""Time of `python -m core.migrate`: on an empty database, and on one the in-code migrations of
earlier builds made, holding 100,000 jobs (the upgrade: adopt 0001-0010, then a new file).
`.venv/bin/python bench/migrations.py [--jobs N] [--runs N]`; writes
bench/results/latest-migrations.md. Throwaway databases on the test MySQL, dropped after."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.getcwd())
import MySQLdb

from core.settings import Settings  # noqa: E402
from tests.support.config import drop_database, service_env  # noqa: E402
from tests.support.legacy_schema import create_legacy_schema  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest-migrations.md"
NEW_FILE = (
    "-- what a next migration on the jobs table costs: a column and an index\n"
    "ALTER TABLE jobs ADD COLUMN bench_note VARCHAR(64) NULL;\n"
    "CREATE INDEX ix_jobs_bench_note ON jobs (status, bench_note);\n"
)


def migrate(env: dict[str, str], *args: str) -> float:
    """Wall time of one `python -m core.migrate` (interpreter start included), seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "core.migrate", *args],
        cwd=tempfile.gettempdir(),  # no .env
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"migrate failed: {result.stderr}")
    return elapsed


def fill(settings: Settings, jobs: int) -> None:
    """1,000 users and `jobs` jobs spread over them and every status, as a deployment holds."""
    cnx = MySQLdb.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
        database=settings.mysql_database,
    )
    try:
        cur = cnx.cursor()
        cur.executemany(
            "INSERT INTO users (name, email, password_hash) VALUES (%s, %s, 'h')",
            [(f"user{i}", f"user{i}@example.com") for i in range(1000)],
        )
        statuses = ("done", "done", "done", "failed", "cancelled", "expired", "queued")
        batch = []
        for i in range(jobs):
            batch.append(
                (uuid.uuid4().hex, 1 + i % 1000, statuses[i % len(statuses)], f"clip{i}.mp4")
            )
            if len(batch) == 5000 or i == jobs - 1:
                cur.executemany(
                    "INSERT INTO jobs (id, owner_id, status, video_fid, video_filename, "
                    "video_size, bitrate, options, finished_at) VALUES "
                    "(%s, %s, %s, 'f', %s, 1000000, '192k', '{\"quality\": 2}', "
                    "UTC_TIMESTAMP(6))",
                    batch,
                )
                cnx.commit()
                batch = []
    finally:
        cnx.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    empty, adopt, next_file = [], [], []
    for _ in range(args.runs):
        env = service_env(MYSQL_DATABASE=f"vid2mp3_bench_mig_{uuid.uuid4().hex[:8]}")
        try:
            empty.append(migrate(env))
        finally:
            drop_database(Settings.from_env(env, dotenv_path=None))
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        for path in (ROOT / "migrations").glob("*.sql"):
            shutil.copy(path, files)
        version = len(list(files.glob("*.sql"))) + 1
        for _ in range(args.runs):
            env = service_env(MYSQL_DATABASE=f"vid2mp3_bench_mig_{uuid.uuid4().hex[:8]}")
            settings = Settings.from_env(env, dotenv_path=None)
            try:
                create_legacy_schema(settings)
                fill(settings, args.jobs)
                adopt.append(migrate(env))
                (files / f"{version:04d}_bench_note.sql").write_text(NEW_FILE)
                next_file.append(migrate(env, "--migrations-dir", str(files)))
                (files / f"{version:04d}_bench_note.sql").unlink()
            finally:
                drop_database(settings)
    server = _server_version(service_env())
    lines = [
        "# Schema migrations",
        "",
        f"`.venv/bin/python bench/migrations.py --jobs {args.jobs} --runs {args.runs}` "
        f"on {server}, {os.cpu_count()} cores; median of {args.runs} runs, wall time of "
        "`python -m core.migrate` including the interpreter's start (about 0.3 s).",
        "",
        "| what | median | runs |",
        "|---|---|---|",
        _row("empty database: create it, apply 0001-0010, create the admin", empty),
        _row(
            f"upgrade of a database the in-code migrations made, {args.jobs:,} jobs: "
            "adopt 0001-0010 (checksums recorded, nothing re-run)",
            adopt,
        ),
        _row(
            f"then one new file on those {args.jobs:,} jobs: ADD COLUMN + CREATE INDEX",
            next_file,
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0


def _row(what: str, times: list[float]) -> str:
    runs = ", ".join(f"{t:.2f}" for t in times)
    return f"| {what} | {statistics.median(times):.2f} s | {runs} |"


def _server_version(env: dict[str, str]) -> str:
    cnx = MySQLdb.connect(
        host=env["MYSQL_HOST"],
        port=int(env["MYSQL_PORT"]),
        user=env["MYSQL_USER"],
        password=env["MYSQL_PASSWORD"],
    )
    try:
        cur = cnx.cursor()
        cur.execute("SELECT VERSION()")
        return f"server {cur.fetchone()[0]}"
    finally:
        cnx.close()


if __name__ == "__main__":
    sys.exit(main())
