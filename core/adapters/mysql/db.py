"""MySQL connections through mysqlclient (MySQLdb, a C extension over libmariadb): one small
pool per process that pings only connections idle for a while, and the error mapping."""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import MySQLdb
from MySQLdb.constants import ER
from MySQLdb.cursors import DictCursor

from core.domain.errors import Conflict, Unavailable

log = logging.getLogger(__name__)

# The driver in use: a C extension module. tests/integration/test_mysql_repos.py checks that
# it is one, so a dependency change cannot fall back to a pure-Python protocol unnoticed.
DRIVER = MySQLdb._mysql

# Refused at the handshake because the server is out of connections: an outage, retried, not
# a bug. A missing database is no outage: schema_version() reads it as "no schema yet".
_SERVER_FULL = (ER.CON_COUNT_ERROR, ER.TOO_MANY_USER_CONNECTIONS)
NO_DATABASE = ER.BAD_DB_ERROR
NO_TABLE = ER.NO_SUCH_TABLE
# A connection used less than this long ago is lent without a ping (a round trip saved per
# checkout), once a poll(2) of its socket shows the server has not closed it; an older one is
# pinged first, and replaced when the ping fails.
FRESH_SECONDS = 5.0
# Server errors that end the session itself (shutting down, connection killed).
_SESSION_ENDED = {ER.SERVER_SHUTDOWN, 1927}

Error = MySQLdb.Error


def errno(exc: BaseException) -> int | None:
    """The MySQL error number of a driver exception, or None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _is_outage(exc: BaseException) -> bool:
    """The server cannot serve us now (down, unreachable, full, slow): Unavailable."""
    if isinstance(exc, MySQLdb.InterfaceError):
        return True
    return isinstance(exc, MySQLdb.OperationalError) and errno(exc) != NO_DATABASE


def _is_broken(exc: BaseException) -> bool:
    """The connection itself is unusable (client errors are numbered from 2000 up)."""
    code = errno(exc)
    if code is None:
        return isinstance(exc, (MySQLdb.InterfaceError, MySQLdb.OperationalError))
    return code >= 2000 or code in _SESSION_ENDED


class _Idle:
    __slots__ = ("cnx", "used_at", "generation")

    def __init__(self, cnx: Any, used_at: float, generation: int):
        self.cnx, self.used_at, self.generation = cnx, used_at, generation


class MySQLDatabase:
    """Owns the per-process pool. The schema comes from `python -m core.migrate`, once per
    deploy (core/adapters/mysql/migrations.py)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        pool_size: int = 5,
        connect_timeout: int = 3,
        read_timeout: int = 10,
        write_timeout: int = 10,
    ):
        self._config: dict[str, Any] = dict(
            host=host,
            port=port,
            user=user,
            password=password,
            connect_timeout=connect_timeout,
            charset="utf8mb4",
            collation="utf8mb4_unicode_ci",
            autocommit=True,
        )
        self.database = database
        # A server that stops answering (packets dropped, no reset) ends a query after these
        # (client error 2013, an outage); the pool then drops its other idle connections.
        self._timeouts = dict(read_timeout=read_timeout, write_timeout=write_timeout)
        self._pool_size = pool_size
        self._wait = float(connect_timeout)
        self._lock = threading.Lock()
        self._reset_pool()

    def _reset_pool(self) -> None:
        # After a fork the parent's sockets are not ours: forget them, never close them.
        self._pid = os.getpid()
        self._idle: list[_Idle] = []
        self._slots = threading.BoundedSemaphore(self._pool_size)
        self._generation = 0

    def _connect(self) -> Any:
        return MySQLdb.connect(
            database=self.database,
            **self._timeouts,
            # Every transaction() is READ COMMITTED: said once here, not twice per transaction.
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            **self._config,
        )

    def _borrow(self) -> tuple[Any, int]:
        with self._lock:
            if self._pid != os.getpid():
                self._reset_pool()
            slots = self._slots
        if not slots.acquire(timeout=self._wait):
            raise Unavailable("mysql")  # every connection of this process is busy
        try:
            while True:
                with self._lock:
                    idle = self._idle.pop() if self._idle else None
                    generation = self._generation
                if idle is None:
                    return self._connect(), generation
                if idle.generation != generation:
                    _close(idle.cnx)  # opened before a failure: the server may have restarted
                    continue
                if _closed_by_server(idle.cnx):
                    _close(idle.cnx)  # restarted, killed, or cut by a proxy while idle
                    continue
                if time.monotonic() - idle.used_at > FRESH_SECONDS:
                    try:
                        idle.cnx.ping()
                    except MySQLdb.Error:
                        _close(idle.cnx)
                        continue
                return idle.cnx, generation
        except BaseException:
            slots.release()
            raise

    def _give_back(self, cnx: Any, generation: int, broken: bool) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return
            if broken:
                # One broken connection says the others may be too (a restart): each idle one
                # is dropped on its next checkout instead of failing a request.
                self._generation += 1
                stale = None
            else:
                stale = None if generation == self._generation else cnx
                if stale is None:
                    self._idle.append(_Idle(cnx, time.monotonic(), generation))
            self._slots.release()
        if broken:
            _close(cnx)
        elif stale is not None:
            _close(stale)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled connection, returned on exit; outages become Unavailable('mysql')."""
        try:
            cnx, generation = self._borrow()
        except MySQLdb.Error as exc:
            if _is_outage(exc):
                raise Unavailable("mysql") from exc
            raise
        broken = False
        try:
            yield cnx
        except MySQLdb.IntegrityError as exc:
            if errno(exc) == ER.DUP_ENTRY:
                raise Conflict(_duplicate_message(str(exc))) from None
            raise
        except MySQLdb.Error as exc:
            broken = _is_broken(exc)
            if _is_outage(exc):
                raise Unavailable("mysql") from exc
            raise
        finally:
            self._give_back(cnx, generation, broken)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor whose rows are dicts, on a pooled connection in autocommit."""
        with self.connection() as cnx:
            cur = cnx.cursor(DictCursor)
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
            cnx.begin()
            cur = cnx.cursor(DictCursor)
            try:
                yield cur
                cnx.commit()
            except BaseException:
                try:
                    cnx.rollback()
                except MySQLdb.Error:  # the connection is gone: the server rolled back already
                    log.debug("rolling back on a broken MySQL connection", exc_info=True)
                raise
            finally:
                cur.close()

    @contextmanager
    def server_connection(self) -> Iterator[Any]:
        """One connection of its own, outside the pool and in no database (the migrations
        create it), with no read deadline (they wait for a lock); outages become
        Unavailable('mysql')."""
        try:
            cnx = MySQLdb.connect(**self._config)
        except MySQLdb.Error as exc:
            if _is_outage(exc):
                raise Unavailable("mysql") from exc
            raise
        try:
            yield cnx
        finally:
            _close(cnx)

    def close(self) -> None:
        """Close this process's pooled connections; the next use opens new ones."""
        with self._lock:
            if self._pid != os.getpid():
                self._reset_pool()
                return
            idle, self._idle = self._idle, []
            self._generation += 1  # the borrowed ones are closed when they come back
        for entry in idle:
            _close(entry.cnx)

    def ping(self) -> None:
        with self.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()


def _closed_by_server(cnx: Any) -> bool:
    """Whether an idle connection has something to read: between two statements the server
    sends nothing, so anything there (its close, a "connection killed" error) means the
    connection is gone. A poll(2) with no wait, not a round trip."""
    try:
        poller = select.poll()
        poller.register(cnx.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError, MySQLdb.Error):
        return True


def _close(cnx: Any) -> None:
    try:
        cnx.close()
    except MySQLdb.Error:
        log.debug("closing a MySQL connection", exc_info=True)


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
