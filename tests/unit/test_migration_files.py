"""The migration files and what a run makes of them, without a database: names, order,
statements, checksums, and the plan (what changed, what to adopt, what runs from where)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.adapters.mysql.migrations import (
    Recorded,
    load,
    plan,
    required_version,
    split,
    unbroken,
)
from core.ports.schema import MigrationError, behind_message

SHIPPED = Path(__file__).resolve().parents[2] / "migrations"


@pytest.fixture
def files(tmp_path):
    """A copy of the first ten shipped migrations (the ones the old code ran) to add to or
    break, so the names below stay true as files are added."""
    for path in sorted(SHIPPED.glob("*.sql"))[:10]:
        shutil.copy(path, tmp_path)
    return tmp_path


def test_the_build_ships_versions_1_to_n_in_order():
    shipped = load()
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
    assert shipped[0].filename == "0001_users.sql"
    assert required_version() == shipped[-1].version >= 10
    assert all(m.statements and len(m.checksum) == 64 for m in shipped)


def test_a_file_splits_into_its_statements_without_comments_alone():
    text = (
        "-- two changes\nALTER TABLE jobs ADD COLUMN a INT NULL;\n\n"
        "/* the index */\nCREATE INDEX ix_a ON jobs (a);\n-- trailing note\n"
    )
    statements = split(text)
    assert len(statements) == 2
    assert statements[0].endswith("ADD COLUMN a INT NULL")
    assert statements[1].endswith("CREATE INDEX ix_a ON jobs (a)")
    assert split("UPDATE t SET note = 'a; b' WHERE id = 1;") == [
        "UPDATE t SET note = 'a; b' WHERE id = 1"
    ]


def test_adding_a_migration_is_dropping_a_file(files):
    version = len(load(files)) + 1
    (files / f"{version:04d}_jobs_x.sql").write_text("ALTER TABLE jobs ADD COLUMN x INT NULL;\n")
    assert load(files)[-1].filename == f"{version:04d}_jobs_x.sql"


@pytest.mark.parametrize(
    "name, message",
    [
        ("11_x.sql", "name it NNNN_name.sql"),
        ("0011-x.sql", "name it NNNN_name.sql"),
        ("0011_Jobs.sql", "name it NNNN_name.sql"),
        ("0012_x.sql", "version 0011 is missing"),
        ("0010_again.sql", "have the same version"),
    ],
)
def test_a_misnamed_duplicate_or_missing_version_is_refused(files, name, message):
    (files / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=message):
        load(files)


def test_an_empty_file_is_refused(files):
    (files / "0011_nothing.sql").write_text("-- to do\n")
    with pytest.raises(MigrationError, match="0011_nothing.sql holds no statement"):
        load(files)


def test_a_fresh_database_has_everything_pending():
    shipped = load()
    todo = plan(shipped, {})
    assert todo.current == 0 and not todo.changed and not todo.adopt
    assert todo.pending == [(m, 0) for m in shipped]


def test_an_applied_file_that_changed_is_named(files):
    shipped = load(files)
    recorded = {
        m.version: Recorded(m.version, m.checksum, len(m.statements), None, True) for m in shipped
    }
    assert plan(shipped, recorded).changed == []
    path = files / shipped[1].filename
    path.write_text(path.read_text() + "\n-- an edit\n")
    changed = plan(load(files), recorded).changed
    assert len(changed) == 1 and changed[0].startswith(f"{shipped[1].filename} was applied")


def test_rows_of_the_in_code_migrations_are_adopted_not_run_again():
    shipped = load()
    recorded = {v: Recorded(v, applied=True) for v in range(1, 11)}
    todo = plan(shipped, recorded)
    assert todo.current == 10
    assert [m.version for m in todo.adopt] == list(range(1, 11))
    assert [m.version for m, _ in todo.pending] == [m.version for m in shipped[10:]]


def test_a_file_stopped_midway_continues_after_its_last_applied_statement(files):
    (files / "0011_three.sql").write_text(
        "ALTER TABLE jobs ADD COLUMN a INT NULL;\nALTER TABLE nope ADD COLUMN b INT NULL;\n"
        "CREATE INDEX ix_a ON jobs (a);\n"
    )
    shipped = load(files)
    three = shipped[-1]
    recorded = {m.version: Recorded(m.version, m.checksum, 1, None, True) for m in shipped[:-1]}
    recorded[11] = Recorded(11, None, 1, three.progress_checksum(1), applied=False)
    todo = plan(shipped, recorded)
    assert todo.current == 10 and todo.pending == [(three, 1)]
    assert todo.describe_pending() == ["0011_three.sql (1 of 3 statements applied)"]
    # fixing the statement that failed is fine; changing the one that ran is not
    (files / "0011_three.sql").write_text(
        "ALTER TABLE jobs ADD COLUMN a INT NULL;\nALTER TABLE jobs ADD COLUMN b INT NULL;\n"
        "CREATE INDEX ix_a ON jobs (a);\n"
    )
    assert plan(load(files), recorded).pending[0][1] == 1
    (files / "0011_three.sql").write_text("ALTER TABLE jobs ADD COLUMN a BIGINT NULL;\n")
    changed = plan(load(files), recorded).changed
    assert changed and changed[0].startswith("0011_three.sql: its first 1 statement(s)")


def test_the_version_is_the_end_of_the_unbroken_run_from_one():
    assert unbroken(set()) == 0
    assert unbroken({1, 2, 3, 5}) == 3
    assert unbroken({2, 3}) == 0
    assert behind_message(9, 11) == "schema is at 9, this build needs 11: run the migration"
    assert behind_message(11, 11) is None and behind_message(12, 11) is None
