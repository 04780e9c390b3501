"""A backing service that stops answering without closing anything (what a partition looks
like) is an outage after the client's deadline, never a hang: MySQL and Redis through a proxy
that goes silent (tests/support/proxy.py `Silence`). The same across real hosts:
tests/faults_net."""

from __future__ import annotations

import time

import pytest

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.redis.client import guard, redis_client
from core.domain.errors import Unavailable
from tests.support.proxy import Silence


@pytest.fixture
def silent_mysql(settings):
    proxy = Silence(settings.mysql_host, settings.mysql_port).up()
    yield proxy
    proxy.down()


def test_a_silent_mysql_is_unavailable_after_the_read_timeout_then_recovers(settings, silent_mysql):
    db = MySQLDatabase(
        "127.0.0.1", silent_mysql.port, settings.mysql_user, settings.mysql_password,
        "mysql", pool_size=3, connect_timeout=1, read_timeout=2, write_timeout=2,
    )  # fmt: skip
    with db.connection(), db.connection(), db.connection():
        pass  # three connections open and back in the pool
    silent_mysql.mute()
    # The first waits out a read timeout and a connect timeout; the next finds no stale pooled
    # connection to wait on, only the connect timeout.
    for bound in (5.0, 1.9):
        started = time.monotonic()
        with pytest.raises(Unavailable):
            db.ping()
        took = time.monotonic() - started
        assert took < bound, f"a silent MySQL took {took:.1f} s to be noticed"
    silent_mysql.unmute()
    db.ping()
    db.close()


def test_a_silent_redis_is_unavailable_after_the_timeout(tmp_path):
    from tests.support.servers import RedisServer

    server = RedisServer(str(tmp_path))
    server.start()
    proxy = Silence("127.0.0.1", server.port).up()
    try:
        client = redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5)
        assert client.ping()
        proxy.mute()
        started = time.monotonic()
        with pytest.raises(Unavailable):
            guard(client.ping)()
        assert time.monotonic() - started < 3
    finally:
        proxy.down()
        server.stop()
