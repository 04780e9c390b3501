"""Every statement of the schema parses under MySQL 8.4's grammar.

compose and Kubernetes deploy mysql:8.4, the tests run on MariaDB (no MySQL 8 server installs
on these machines), so the schema is checked against MySQL's own grammar, version-aware:
MySQL Workbench's, packaged as ts-mysql-parser (pinned in tests/sqlgrammar), at server 8.4.0.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.adapters.mysql.migrations import BOOKKEEPING, load
from tests.deploy.support import ROOT, run
from tests.support.legacy_schema import MIGRATIONS as IN_CODE_MIGRATIONS

GRAMMAR = ROOT / "tests" / "sqlgrammar"
SERVER_VERSION = "8.4.0"


def rejected(statements: list[tuple[str, str]], version: str = SERVER_VERSION) -> list[str]:
    """`where: error` for each statement MySQL's grammar at `version` rejects."""
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not on PATH: the MySQL grammar check runs on node (CI installs it)")
    if not (GRAMMAR / "node_modules" / "ts-mysql-parser").is_dir():
        pytest.fail("the MySQL grammar is not installed: run `make sqlgrammar` (npm ci)")
    payload = {"version": version, "statements": [{"where": w, "sql": s} for w, s in statements]}
    result = run([node, str(GRAMMAR / "check.js")], stdin=json.dumps(payload))
    assert result.returncode == 0, result.stderr
    return [f"{r['where']}: {r['error']}" for r in json.loads(result.stdout)]


def migration_statements(directory: Path | None = None) -> list[tuple[str, str]]:
    return [
        (f"{m.filename} statement {i}", statement)
        for m in load(directory)
        for i, statement in enumerate(m.statements, start=1)
    ]


def test_the_pinned_grammar_is_installed():
    lock = json.loads((GRAMMAR / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/ts-mysql-parser"]["version"] == "0.2.0"
    assert lock["node_modules/antlr4ts"]["version"] == "0.5.0-alpha.4"
    installed = json.loads(
        (GRAMMAR / "node_modules" / "ts-mysql-parser" / "package.json").read_text()
    )
    assert installed["version"] == "0.2.0"


def test_every_migration_statement_parses_under_mysql_8_4():
    statements = migration_statements()
    assert len(statements) >= 22  # every file, every statement
    assert rejected(statements) == []


def test_the_migrations_bookkeeping_parses_under_mysql_8_4():
    """What the migrator sends besides the files; %s placeholders as MySQL's `?` markers."""
    statements = [(f"bookkeeping {i}", s.replace("%s", "?")) for i, s in enumerate(BOOKKEEPING, 1)]
    assert len(statements) == 11
    assert rejected(statements) == []


def test_the_grammar_rejects_what_mysql_8_4_rejects():
    """The check can fail: MariaDB's extensions and an unparenthesised expression default."""
    problems = rejected(
        [
            ("add column", "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS x INT NULL"),
            ("create index", "CREATE INDEX IF NOT EXISTS ix_x ON jobs (status, x)"),
            (
                "default",
                "CREATE TABLE t (at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6))",
            ),
        ]
    )
    assert [p.split(":")[0] for p in problems] == ["add column", "create index", "default"]
    fixed = [
        ("add column", "ALTER TABLE jobs ADD COLUMN x INT NULL"),
        ("create index", "CREATE INDEX ix_x ON jobs (status, x)"),
        ("default", "CREATE TABLE t (at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)))"),
    ]
    assert rejected(fixed) == []


def test_the_grammar_is_the_server_versions():
    """An expression default is MySQL 8.0.13+: 5.7's grammar refuses what 8.4's accepts."""
    statement = [("default", "CREATE TABLE t (a DATETIME(6) DEFAULT (UTC_TIMESTAMP(6)))")]
    assert rejected(statement, version="5.7.7") and not rejected(statement)


def test_the_in_code_migrations_were_not_mysql_8_4():
    """What the files replace: the old in-code statements fail on mysql:8.4, as the issue says."""
    old = [(f"in-code {v}", s) for v, _, statements in IN_CODE_MIGRATIONS for s in statements]
    failing = {p.split(":")[0] for p in rejected(old)}
    assert {f"in-code {version}" for version in range(1, 11)} <= failing


def test_a_new_file_with_add_column_if_not_exists_fails_the_check(tmp_path):
    """What the test says when someone adds a MariaDB-only migration file."""
    for migration in (ROOT / "migrations").glob("*.sql"):
        shutil.copy(migration, tmp_path)
    version = len(load()) + 1
    (tmp_path / f"{version:04d}_jobs_x.sql").write_text(
        "-- a MariaDB habit\nALTER TABLE jobs ADD COLUMN x INT NULL;\n"
        "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS y INT NULL;\n"
    )
    assert rejected(migration_statements(tmp_path)) == [
        f'{version:04d}_jobs_x.sql statement 2: "IF" is not valid at this position'
    ]
