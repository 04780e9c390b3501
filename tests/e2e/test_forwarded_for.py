"""X-Forwarded-For over real gunicorn: believed from the proxy FORWARDED_ALLOW_IPS names, not
from a client that connects past it (here from 127.0.0.2, as the production overlay runs:
TRUSTED_PROXIES=1)."""

from __future__ import annotations

import base64
import http.client
import uuid

import pytest

from core.bootstrap import Container
from devtools import processes as procs
from tests.support.config import service_env
from tests.support.stack import Stack, free_port, run_migration
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e
PER_ADDRESS = 3


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """gunicorn alone on 127.0.0.1, trusting one proxy hop from 127.0.0.1 only."""
    run, port = uuid.uuid4().hex[:8], free_port()
    tmp = tmp_path_factory.mktemp("forwarded")
    env = service_env(
        MYSQL_DATABASE=f"vid2mp3_e2e_{run}",
        REDIS_PREFIX=f"vid2mp3-e2e-{run}:",
        CELERY_KEY_PREFIX=f"vid2mp3-e2e-{run}:",
        API_HOST="127.0.0.1",
        API_PORT=port,
        DATA_DIR=tmp / "data",
        WEB_CONCURRENCY=1,
        TRUSTED_PROXIES=1,
        FORWARDED_ALLOW_IPS="127.0.0.1",
        LOGIN_MAX_FAILURES_PER_ADDRESS=PER_ADDRESS,
    )
    stack = Stack(env=env, log_dir=tmp, base_url=f"http://127.0.0.1:{port}")
    run_migration(stack)  # the database, schema and admin, as compose's `migrate` service
    try:
        stack.start("api", procs.service_commands()["api"])
        wait_for(lambda: _answers(stack, port), timeout=30, what="gunicorn to answer")
        yield port
    except BaseException:
        stack.print_logs()
        raise
    finally:
        stack.stop_all()
        from tests.support.config import cleanup

        cleanup(Container(stack.settings))


def _answers(stack: Stack, port: int) -> bool:
    stack.check_alive()
    try:
        return request(port, "127.0.0.1", "/healthz")[0] == 200
    except OSError:
        return False


def request(port: int, source: str, path: str, headers: dict[str, str] | None = None):
    """(status, body) of a POST or GET sent from the local address `source`."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        method = "POST" if path == "/login" else "GET"
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def guess(port: int, source: str, n: int, forwarded_for: str) -> int:
    credentials = base64.b64encode(f"spray{n}@example.com:wrong-guess".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}", "X-Forwarded-For": forwarded_for}
    return request(port, source, "/login", headers)[0]


def test_a_client_past_the_proxy_cannot_pick_its_address(api):
    statuses = [guess(api, "127.0.0.2", n, f"198.51.100.{n}") for n in range(6)]
    assert statuses == [401] * PER_ADDRESS + [429] * (6 - PER_ADDRESS)


def test_the_proxy_speaks_for_its_clients(api):
    # each client behind the proxy has its own budget...
    assert [guess(api, "127.0.0.1", n, f"203.0.113.{n}") for n in range(6)] == [401] * 6
    # ...and is held to it
    statuses = [guess(api, "127.0.0.1", n, "203.0.113.200") for n in range(6)]
    assert statuses == [401] * PER_ADDRESS + [429] * (6 - PER_ADDRESS)
