"""MySQL connections: one lazily created pool per process, error mapping."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import mysql.connector
from mysql.connector import errorcode, errors, pooling

from core.domain.errors import Conflict, Unavailable

log = logging.getLogger(__name__)

# A server that stops answering (packets dropped, no reset) shows as a read or write timeout,
# which mysql-connector does not derive from OperationalError.
_UNAVAILABLE = (
    errors.InterfaceError,
    errors.OperationalError,
    errors.PoolError,
    errors.ReadTimeoutError,
    errors.WriteTimeoutError,
    errors.ConnectionTimeoutError,
)
# Refused at the handshake because the server is out of connections: an outage, retried,
# not a bug (mysql-connector raises these as a plain DatabaseError).
_SERVER_FULL = (errorcode.ER_CON_COUNT_ERROR, errorcode.ER_TOO_MANY_USER_CONNECTIONS)
# What a silent server (packets dropped, no reset) looks like to a connection in use.
_SILENT = (errors.ReadTimeoutError, errors.WriteTimeoutError, errors.ConnectionTimeoutError)


class MySQLDatabase:
    """Owns the per-process pool. The schema comes from `python -m core.migrate`, once per
    deploy (core/adapters/mysql_migrations.py)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        pool_size: int = 5,
        connect_timeout: int = 3,
        read_timeout: int | None = 10,
        write_timeout: int | None = 10,
    ):
        self._config = dict(
            host=host,
            port=port,
            user=user,
            password=password,
            connection_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            autocommit=True,
            charset="utf8mb4",
            collation="utf8mb4_unicode_ci",
        )
        self.database = database
        self._pool_size = pool_size
        self._pool: pooling.MySQLConnectionPool | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> pooling.MySQLConnectionPool:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = pooling.MySQLConnectionPool(
                    pool_name=f"vid2mp3_{os.getpid()}_{id(self)}",
                    pool_size=self._pool_size,
                    pool_reset_session=False,
                    database=self.database,
                    **self._config,
                )
                self._pid = os.getpid()
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled connection, returned on exit; outages become Unavailable('mysql')."""
        try:
            cnx = self._get_pool().get_connection()
        except _UNAVAILABLE as exc:
            # The pool pinged a connection and could not open another: its other idle
            # connections lead to the same server, each to wait out its own read timeout.
            self.close()
            raise Unavailable("mysql") from exc
        except errors.DatabaseError as exc:
            if exc.errno in _SERVER_FULL:
                raise Unavailable("mysql") from exc
            raise
        try:
            yield cnx
        except errors.IntegrityError as exc:
            if exc.errno == errorcode.ER_DUP_ENTRY:
                raise Conflict(_duplicate_message(str(exc))) from None
            raise
        except _UNAVAILABLE as exc:
            if isinstance(exc, _SILENT):
                self.close()  # as above: the next caller connects anew instead of waiting
            raise Unavailable("mysql") from exc
        finally:
            try:
                cnx.close()
            except Exception:  # a dead connection still goes back to the pool, to reconnect
                log.debug("closing a broken MySQL connection", exc_info=True)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        with self.connection() as cnx:
            cur = cnx.cursor(dictionary=True)
            try:
                yield cur
            finally:
                cur.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one READ COMMITTED transaction: committed when the block ends,
        rolled back when it raises. Each statement sees what others committed before it,
        so a row lock taken first (SELECT ... FOR UPDATE) orders the checks that follow."""
        with self.connection() as cnx:
            cnx.start_transaction(isolation_level="READ COMMITTED")
            cur = cnx.cursor(dictionary=True)
            try:
                yield cur
                cnx.commit()
            except BaseException:
                try:
                    cnx.rollback()
                except Exception:  # the connection is gone: the server rolled back already
                    log.debug("rolling back on a broken MySQL connection", exc_info=True)
                raise
            finally:
                cur.close()

    @contextmanager
    def server_connection(self) -> Iterator[Any]:
        """One connection of its own, outside the pool and in no database (the migrations
        create it); outages become Unavailable('mysql')."""
        try:
            # no read timeout: GET_LOCK waits for another run, an ALTER may take long
            cnx = mysql.connector.connect(**{**self._config, "read_timeout": None})
        except _UNAVAILABLE as exc:
            raise Unavailable("mysql") from exc
        except errors.DatabaseError as exc:
            if exc.errno in _SERVER_FULL:
                raise Unavailable("mysql") from exc
            raise
        try:
            yield cnx
        finally:
            try:
                cnx.close()
            except errors.Error:
                log.debug("closing a MySQL connection", exc_info=True)

    def close(self) -> None:
        """Close this process's pooled connections; the next use opens new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            try:
                pool._remove_connections()  # the public API has no other way to empty a pool
            except errors.Error:
                log.debug("closing pooled MySQL connections", exc_info=True)

    def ping(self) -> None:
        with self.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()


def identifier(name: str) -> str:
    """A database name safe to put between backticks, or ValueError."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return name


def _duplicate_message(text: str) -> str:
    for column in ("name", "email"):
        if f"uq_users_{column}" in text:
            return f"that {column} is taken"
    return "already exists"
