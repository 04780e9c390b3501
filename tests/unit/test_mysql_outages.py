"""A MySQL server out of connections is an outage (Unavailable, retried by the tasks), not a bug."""

from __future__ import annotations

import socket

import MySQLdb
import pytest
from MySQLdb.constants import ER

from core.adapters.mysql import db as mysql_db
from core.adapters.mysql.db import MySQLDatabase
from core.domain.errors import Unavailable


def _refuse(errno: int, error=MySQLdb.OperationalError):
    def connect(**_):
        raise error(errno, "refused")

    return connect


@pytest.mark.parametrize("errno", [ER.CON_COUNT_ERROR, ER.TOO_MANY_USER_CONNECTIONS])
def test_too_many_connections_is_unavailable(monkeypatch, errno):
    db = MySQLDatabase("127.0.0.1", 1, "u", "p", "d")
    monkeypatch.setattr(mysql_db.MySQLdb, "connect", _refuse(errno))
    with pytest.raises(Unavailable):
        with db.connection():
            pass
    with pytest.raises(Unavailable):
        with db.server_connection():
            pass


def test_other_database_errors_stay_errors(monkeypatch):
    db = MySQLDatabase("127.0.0.1", 1, "u", "p", "d")
    monkeypatch.setattr(
        mysql_db.MySQLdb, "connect", _refuse(ER.PARSE_ERROR, MySQLdb.ProgrammingError)
    )
    with pytest.raises(MySQLdb.ProgrammingError) as raised:
        with db.connection():
            pass
    assert not isinstance(raised.value, Unavailable)


def test_a_missing_database_is_no_outage(monkeypatch):
    """schema_version() reads it as "no schema yet", and /readyz says so."""
    db = MySQLDatabase("127.0.0.1", 1, "u", "p", "d")
    monkeypatch.setattr(mysql_db.MySQLdb, "connect", _refuse(ER.BAD_DB_ERROR))
    with pytest.raises(MySQLdb.OperationalError):
        with db.connection():
            pass


def test_a_busy_pool_waits_then_is_unavailable(monkeypatch):
    """Every connection lent out: the next caller waits its deadline, then gets a 503."""
    db = MySQLDatabase("127.0.0.1", 1, "u", "p", "d", pool_size=1, connect_timeout=0)
    monkeypatch.setattr(mysql_db.MySQLdb, "connect", lambda **_: _Idle())
    with db.connection():
        with pytest.raises(Unavailable):
            with db.connection():
                pass
    with db.connection():  # returned: lent again
        pass


class _Idle:
    """A connection whose server says nothing (one end of a socket pair nobody writes to)."""

    def __init__(self):
        self._socket, self._peer = socket.socketpair()

    def fileno(self):
        return self._socket.fileno()

    def close(self):
        self._socket.close()
        self._peer.close()
