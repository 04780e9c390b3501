"""A MySQL server out of connections is an outage (Unavailable, retried by the tasks), not a bug."""

from __future__ import annotations

import pytest
from mysql.connector import errorcode, errors

from core.adapters.mysql import db as mysql_db
from core.adapters.mysql.db import MySQLDatabase
from core.domain.errors import Unavailable


class _FullPool:
    def __init__(self, errno: int):
        self.errno = errno

    def get_connection(self):
        raise errors.DatabaseError(msg="refused", errno=self.errno)


@pytest.mark.parametrize(
    "errno", [errorcode.ER_CON_COUNT_ERROR, errorcode.ER_TOO_MANY_USER_CONNECTIONS]
)
def test_too_many_connections_is_unavailable(monkeypatch, errno):
    db = MySQLDatabase("127.0.0.1", 1, "u", "p", "d")
    monkeypatch.setattr(db, "_get_pool", lambda: _FullPool(errno))
    with pytest.raises(Unavailable):
        with db.connection():
            pass

    def refuse(**_):
        raise errors.DatabaseError(msg="refused", errno=errno)

    monkeypatch.setattr(mysql_db.mysql.connector, "connect", refuse)
    with pytest.raises(Unavailable):
        with db.server_connection():
            pass


def test_other_database_errors_stay_errors(monkeypatch):
    db = MySQLDatabase("127.0.0.1", 1, "u", "p", "d")
    monkeypatch.setattr(db, "_get_pool", lambda: _FullPool(errorcode.ER_PARSE_ERROR))
    with pytest.raises(errors.DatabaseError) as raised:
        with db.connection():
            pass
    assert not isinstance(raised.value, Unavailable)
