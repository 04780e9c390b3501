"""The database schema: its migrations, what a run would do, and the line a process stops
with when the schema is older than the build."""

from __future__ import annotations

import abc
from typing import Callable, Protocol


class MigrationError(Exception):
    """The run cannot go on; the message is one line naming the file (and the statement)."""


class SchemaPlan(Protocol):
    """What a migration run has to do, from the files and the database's records."""

    current: int  # the version the schema is at
    changed: list[str]  # one line per applied file that has changed since: nothing runs
    unknown: list[int]  # versions the database has and the files do not (a newer build's)

    @property
    def is_current(self) -> bool:
        """Nothing to apply, adopt or refuse."""

    def describe_pending(self) -> list[str]:
        """One line per file still to apply (or adopt)."""


class SchemaMigrator(abc.ABC):
    """Applies and checks a set of migration files on one database."""

    @property
    @abc.abstractmethod
    def required(self) -> int:
        """The version its files bring the schema to (0: no files)."""

    @abc.abstractmethod
    def status(self) -> SchemaPlan:
        """What a run would do, changing nothing and taking no lock."""

    @abc.abstractmethod
    def apply(
        self, say: Callable[[str], None], then: Callable[[], None] | None = None
    ) -> SchemaPlan:
        """Create the database if missing and run what is pending, then `then` (the admin
        account), all under a named lock; `say` hears one line per file. Returns the plan as
        it stands after the run. MigrationError names the file (and the statement) that
        stopped it; Unavailable when the database cannot be reached."""


def behind_message(current: int, required: int) -> str | None:
    """The one line a process stops with when the schema is older than the build needs."""
    if current >= required:
        return None
    return f"schema is at {current}, this build needs {required}: run the migration"
