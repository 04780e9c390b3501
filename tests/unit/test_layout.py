"""The README's code layout table against the code: every blueprint the app registers, every
task the Celery app knows, every worker entrypoint, every module of the domain, ports, services
and adapters, and every module of core/ is named in it, and everything it names exists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.support.config import service_env
from tests.support.markdown import ROOT, cell_code_spans, read
from tests.support.openapi import reference

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*(?:[./][a-z_][a-z0-9_]*)*(?:\.py)?/?")


@dataclass(frozen=True)
class Row:
    paths: tuple[str, ...]  # the first cell's code spans
    names: tuple[str, ...]  # the second cell's code spans, `python -m ` taken off

    def is_for(self, path: str) -> bool:
        return path in self.paths


@cache
def rows() -> list[Row]:
    table = read(ROOT / "README.md").section("Code layout").tables()[0]
    return [
        Row(
            tuple(cell_code_spans(row[0])),
            tuple(span.removeprefix("python -m ") for span in cell_code_spans(row[1])),
        )
        for row in table
    ]


def names_for(path: str) -> set[str]:
    return {name for row in rows() if row.is_for(path) for name in row.names}


def modules(package: Path) -> list[Path]:
    """Every module under a package, __init__.py left out, sub-packages included."""
    return sorted(p for p in package.rglob("*.py") if p.name != "__init__.py")


def spellings(module: Path, base: Path) -> set[str]:
    """How a row for `base` may name `module`: `mysql/db`, `mysql.db`, `mysql/db.py`."""
    relative = module.relative_to(base).with_suffix("")
    slashed = relative.as_posix()
    return {slashed, slashed + ".py", slashed.replace("/", ".")}


def resolves(name: str, base: Path) -> bool:
    """Whether a name in a row for `base` is a module or package there."""
    target = base / name.rstrip("/").removesuffix(".py").replace(".", "/")
    return target.with_suffix(".py").exists() or (target / "__init__.py").exists()


def test_every_path_in_the_table_exists():
    missing = [path for row in rows() for path in row.paths if not (ROOT / path).exists()]
    assert rows() and not missing, f"the layout table names paths that do not exist: {missing}"


def test_every_blueprint_the_app_registers_is_named():
    app, _ = reference()
    missing = sorted(set(app.blueprints) - names_for("api/"))
    assert not missing, f"the layout table's api/ row lacks the blueprints {missing}"


def test_what_the_api_row_names_is_a_blueprint_or_a_module_of_api():
    app, _ = reference()
    unknown = [
        name
        for name in names_for("api/")
        if IDENTIFIER.fullmatch(name)
        and name not in app.blueprints
        and not resolves(name, ROOT / "api")
    ]
    assert not unknown, f"the api/ row names what is neither blueprint nor module: {unknown}"


@cache
def registered_tasks() -> set[str]:
    """The task names of a worker's Celery app, built in a process of its own (building it
    makes it the process's default app)."""
    script = (
        "import json; from tasks import create_worker_app; "
        "print(json.dumps(sorted(create_worker_app().tasks)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=service_env(DATA_DIR="/tmp", PATH="/usr/bin:/bin"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {name for name in json.loads(out) if not name.startswith("celery.")}


def test_every_celery_task_is_named_and_every_task_named_exists():
    tasks = registered_tasks()
    named = {name for name in names_for("tasks/") if re.fullmatch(r"[a-z_]+\.[a-z_0-9]+", name)}
    assert len(tasks) >= 5, tasks
    assert tasks - named == set(), f"the tasks/ row lacks the tasks {sorted(tasks - named)}"
    assert named - tasks == set(), f"the tasks/ row names unknown tasks {sorted(named - tasks)}"


def test_every_worker_entrypoint_is_named_and_every_one_named_exists():
    workers = ROOT / "workers"
    entrypoints = {f"workers.{p.stem}" for p in modules(workers)}
    named = {name for name in names_for("workers/") if name.startswith("workers.")}
    assert entrypoints - named == set(), f"workers/ row lacks {sorted(entrypoints - named)}"
    assert named - entrypoints == set(), f"workers/ row names {sorted(named - entrypoints)}"


def _check_package(package: str) -> None:
    """Every module under `package` is named by a row for it or for one of its sub-packages,
    and every module-like name in those rows is a module or package there."""
    base = ROOT / package
    problems = []
    for module in modules(base):
        homes = [
            directory
            for directory in [module.parent, *module.parent.parents]
            if directory.is_relative_to(base)
        ]
        if not any(
            spellings(module, home) & names_for(home.relative_to(ROOT).as_posix() + "/")
            for home in homes
        ):
            problems.append(f"{module.relative_to(ROOT)} is not named")
    for row in rows():
        for path in row.paths:
            if path.rstrip("/") == package or path.startswith(package + "/"):
                home = ROOT / path
                problems += [
                    f"{path} names {name}, which is no module there"
                    for name in row.names
                    if home.is_dir() and IDENTIFIER.fullmatch(name) and not resolves(name, home)
                ]
    assert not problems, "; ".join(problems)


def test_every_service_is_named_and_every_service_named_exists():
    _check_package("core/services")


def test_every_adapter_is_named_and_every_adapter_named_exists():
    _check_package("core/adapters")


def test_every_module_of_the_domain_and_the_ports_is_named():
    _check_package("core/domain")
    _check_package("core/ports")


def test_every_module_and_package_of_core_has_a_row():
    listed = {path.rstrip("/") for row in rows() for path in row.paths}
    entries = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "core").iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()
    ]
    missing = sorted(entry for entry in entries if entry not in listed)
    assert not missing, f"the layout table has no row for {missing}"
