"""Processes check their settings at start and say what is wrong in one line; the API
creates its database and admin account at start-up, before any request."""

import subprocess
import sys
import uuid
from pathlib import Path

import mysql.connector
import pytest

from tests.support.config import service_env
from tests.support.stack import free_port
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "api.wsgi:app"]


def mysql_login(env):
    return {
        "host": env["MYSQL_HOST"],
        "port": int(env["MYSQL_PORT"]),
        "user": env["MYSQL_USER"],
        "password": env["MYSQL_PASSWORD"],
    }


def env_without(*names, **extra):
    env = service_env(**extra)
    for name in names:
        env.pop(name)
    return {"PATH": "/usr/bin:/bin", **env}


PROCESSES = {
    "api": GUNICORN,
    "convert": [sys.executable, "-m", "workers.convert"],
    "notify": [sys.executable, "-m", "workers.notify"],
    "beat": [sys.executable, "-m", "workers.beat"],
    "flower": [sys.executable, "-m", "workers.flower"],
    "health": [sys.executable, "-m", "workers.health", "convert"],
}


@pytest.mark.parametrize("command", PROCESSES.values(), ids=PROCESSES.keys())
def test_missing_secret_stops_with_one_line(command, tmp_path):
    # run elsewhere than the checkout, so a developer's .env cannot fill the gap
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=env_without("JWT_SECRET"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "configuration error: JWT_SECRET is required but not set" in output
    assert "Traceback" not in output


MALFORMED = [
    ("CONVERT_TIME_LIMIT", "abc", "CONVERT_TIME_LIMIT must be an integer"),
    ("SWEEP_INTERVAL_SECONDS", "1m", "SWEEP_INTERVAL_SECONDS must be a number"),
    ("WORKER_MAX_TASKS_PER_CHILD", "-1", "WORKER_MAX_TASKS_PER_CHILD must be positive"),
    ("ADMIN_PASSWORD", "REPLACE_ME", "ADMIN_PASSWORD still holds a placeholder"),
]


@pytest.mark.parametrize("name,value,message", MALFORMED, ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("process", PROCESSES.keys())
def test_malformed_value_stops_every_process_with_one_line(process, name, value, message, tmp_path):
    result = subprocess.run(
        PROCESSES[process],
        cwd=tmp_path,
        env=env_without(**{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"configuration error: {message}" in output
    assert "Traceback" not in output


def test_flower_refuses_an_empty_password(tmp_path):
    result = subprocess.run(
        PROCESSES["flower"],
        cwd=tmp_path,
        env=env_without(FLOWER_BASIC_AUTH="admin:"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "configuration error: FLOWER_BASIC_AUTH" in result.stderr + result.stdout


def test_api_creates_database_and_admin_at_start(tmp_path):
    database = f"vid2mp3_start_{uuid.uuid4().hex[:8]}"
    env = env_without(MYSQL_DATABASE=database, API_PORT=free_port(), DATA_DIR=tmp_path)
    process = subprocess.Popen(
        GUNICORN, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def admin_exists():
            try:
                cnx = mysql.connector.connect(database=database, **mysql_login(env))
            except mysql.connector.Error:
                return False
            try:
                cur = cnx.cursor()
                cur.execute("SELECT role FROM users WHERE email = %s", (env["ADMIN_EMAIL"],))
                return cur.fetchall() == [("admin",)]
            except mysql.connector.Error:
                return False
            finally:
                cnx.close()

        wait_for(admin_exists, timeout=30, interval=0.2, what="the admin account")
    finally:
        process.terminate()
        process.wait(timeout=30)
        cnx = mysql.connector.connect(**mysql_login(env))
        cnx.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        cnx.close()
