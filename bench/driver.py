"""What one job poll (`GET /jobs/<id>`) costs the API in MySQL statements, round trips and CPU,
with the driver of this checkout. `.venv/bin/python bench/driver.py [--polls N]` appends a line
to bench/results/latest-driver.md; run it on two checkouts to compare drivers. In-process
(Flask's test client, no HTTP), on a throwaway database reached through a forwarder that
counts the commands of the MySQL wire protocol (tests/support/mysql_wire.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.getcwd())

from core.settings import Settings  # noqa: E402
from tests.support.config import drop_database, service_env  # noqa: E402
from tests.support.mysql_wire import CommandCounter  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "latest-driver.md"


def _driver() -> str:
    """The driver the measured code loaded."""
    if "mysql.connector" in sys.modules:
        import mysql.connector

        kind = "C extension" if mysql.connector.HAVE_CEXT else "pure Python"
        return f"mysql-connector-python {mysql.connector.__version__} ({kind})"
    import MySQLdb

    return f"mysqlclient {'.'.join(map(str, MySQLdb.version_info[:3]))} (C)"


def measure(polls: int) -> dict[str, float]:
    import base64

    from api import create_app
    from core.bootstrap import Container
    from core.domain.jobs import Job, JobStatus
    from core.migrate import run

    base = Settings.from_env(service_env(MYSQL_DATABASE=f"vid2mp3_bench_{uuid.uuid4().hex[:8]}"))
    counter = CommandCounter(base.mysql_host, base.mysql_port).up()
    env = service_env(MYSQL_DATABASE=base.mysql_database, MYSQL_HOST="127.0.0.1")
    env["MYSQL_PORT"] = str(counter.port)
    settings = Settings.from_env(env, dotenv_path=None)
    try:
        assert run(settings, say=lambda line: None, fail=print) == 0
        container = Container(settings)
        client = create_app(container=container).test_client()
        basic = base64.b64encode(f"{settings.admin_email}:{settings.admin_password}".encode())
        token = client.post("/login", headers={"Authorization": f"Basic {basic.decode()}"})
        headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
        owner = container.user_repo.get_by_email(settings.admin_email)
        job = Job(
            id=uuid.uuid4().hex,
            owner_id=owner.id,
            status=JobStatus.CONVERTING,
            video_fid="f" * 32,
            video_filename="clip.mp4",
            video_size=123,
        )
        container.job_repo.add(job)
        for _ in range(20):  # warm: connections open, code paths imported
            assert client.get(f"/jobs/{job.id}", headers=headers).status_code == 200
        before, cpu = counter.snapshot(), time.process_time()
        for _ in range(polls):
            assert client.get(f"/jobs/{job.id}", headers=headers).status_code == 200
        cpu = time.process_time() - cpu
        spent = counter.snapshot() - before
        container.db.close()
        return {
            "statements": spent["query"] / polls,
            "round_trips": sum(spent.values()) / polls,
            "pings": spent["ping"] / polls,
            "cpu_us": cpu / polls * 1e6,
        }
    finally:
        counter.down()
        drop_database(base)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polls", type=int, default=2000)
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    figures = measure(args.polls)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    line = (
        f"| {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC | {commit} {args.label} | "
        f"{_driver()} | {figures['statements']:.2f} | {figures['round_trips']:.2f} | "
        f"{figures['pings']:.2f} | {figures['cpu_us']:.0f} |"
    )
    if not RESULTS.exists():
        RESULTS.write_text(
            "# MySQL per job poll (`GET /jobs/<id>`, in-process, bench/driver.py)\n\n"
            f"Machine: {os.cpu_count()} cores, shared; MariaDB on 127.0.0.1 through a counting "
            "forwarder. CPU: the API process's user+system time per poll (Flask, auth, JSON "
            "and driver together).\n\n"
            "| when | checkout | driver | statements/poll | round trips/poll | pings/poll | "
            "API CPU us/poll |\n|---|---|---|---|---|---|---|\n",
            encoding="utf-8",
        )
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
