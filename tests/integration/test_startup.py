"""Processes check their settings at start and say what is wrong in one line; the API and the
workers check the schema version and stop when it is behind, never migrating themselves."""

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import MySQLdb
import pytest

from core.adapters.mysql.migrations import required_version
from core.settings import Settings
from tests.support.config import drop_database, service_env
from tests.support.stack import free_port
from tests.support.wait import scaled

ROOT = Path(__file__).resolve().parents[2]
LAST = required_version()
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
    "migrate": [sys.executable, "-m", "core.migrate"],
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
        timeout=scaled(60),
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
        timeout=scaled(60),
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
        timeout=scaled(60),
    )
    assert result.returncode != 0
    assert "configuration error: FLOWER_BASIC_AUTH" in result.stderr + result.stdout


GUNICORN_SETTINGS = [
    ("API_THREADS", "four", "API_THREADS must be an integer"),
    ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be positive"),
    ("API_TIMEOUT", "5m", "API_TIMEOUT must be an integer"),
    ("API_PORT", "80800", "API_PORT must be a TCP port"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
]


@pytest.mark.parametrize(
    "name,value,message", GUNICORN_SETTINGS, ids=[g[0] for g in GUNICORN_SETTINGS]
)
def test_gunicorn_takes_its_settings_from_settings(name, value, message, tmp_path):
    result = subprocess.run(
        GUNICORN,
        cwd=tmp_path,
        env=env_without(**{name: value}),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert result.returncode != 0
    (line,) = (result.stdout + result.stderr).strip().splitlines()  # one line, no traceback
    assert line.startswith(f"configuration error: {message}")


def test_gunicorn_reads_dot_env_like_the_rest(tmp_path):
    (tmp_path / ".env").write_text("API_THREADS=four\n")
    result = subprocess.run(
        GUNICORN,
        cwd=tmp_path,
        env=env_without(),
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert result.returncode != 0
    (line,) = (result.stdout + result.stderr).strip().splitlines()
    assert line.startswith("configuration error: API_THREADS must be an integer")


def _database_at(version: int, tmp_path: Path) -> dict[str, str]:
    """Settings of a new database migrated by the first `version` files only."""
    env = env_without(MYSQL_DATABASE=f"vid2mp3_start_{uuid.uuid4().hex[:8]}", DATA_DIR=tmp_path)
    if version:
        first = tmp_path / "first"
        first.mkdir()
        for path in sorted((ROOT / "migrations").glob("*.sql"))[:version]:
            shutil.copy(path, first)
        result = subprocess.run(
            [sys.executable, "-m", "core.migrate", "--migrations-dir", str(first)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(120),
        )
        assert result.returncode == 0, result.stderr
    return env


@pytest.fixture
def behind(tmp_path):
    env = _database_at(LAST - 1, tmp_path)
    yield env
    drop_database(Settings.from_env(env, dotenv_path=None))


SCHEMA_USERS = {
    "api": GUNICORN,
    "convert": PROCESSES["convert"],
    "notify": PROCESSES["notify"],
    "webhooks": [sys.executable, "-m", "workers.webhooks"],
    "fetch": [sys.executable, "-m", "workers.fetch"],
}


@pytest.mark.parametrize("process", SCHEMA_USERS.keys())
def test_api_and_workers_stop_with_one_line_when_the_schema_is_behind(process, behind, tmp_path):
    result = subprocess.run(
        SCHEMA_USERS[process],
        cwd=tmp_path,
        env={**behind, "API_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"schema is at {LAST - 1}, this build needs {LAST}: run the migration" in output
    assert "Traceback" not in output


def test_the_api_creates_neither_the_database_nor_the_admin(tmp_path):
    env = _database_at(0, tmp_path)
    result = subprocess.run(
        GUNICORN,
        cwd=tmp_path,
        env={**env, "API_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert result.returncode != 0
    assert f"schema is at 0, this build needs {LAST}: run the migration" in result.stderr
    cnx = MySQLdb.connect(**mysql_login(env))
    try:
        cur = cnx.cursor()
        cur.execute("SHOW DATABASES LIKE %s", (env["MYSQL_DATABASE"],))
        assert not cur.fetchall()
    finally:
        cnx.close()


def test_readyz_says_the_schema_is_behind(behind):
    from api import create_app
    from core.bootstrap import Container

    container = Container(Settings.from_env(behind, dotenv_path=None))
    try:
        response = create_app(container=container).test_client().get("/readyz")
    finally:
        container.close()
    assert response.status_code == 503
    message = f"schema is at {LAST - 1}, this build needs {LAST}: run the migration"
    assert response.get_json() == {
        "status": f"unavailable: {message}",
        "checks": {"mysql": "ok", "redis": "ok", "blob_store": "ok", "schema": message},
    }
