"""A pytest plugin that holds the OpenAPI document to what the API really answers.

Every response a test receives is recorded: from Flask's test client (the `request_finished`
signal, for any app built in this process) and from the HTTP client of the e2e and fault tests
(`record_http`). Two checks follow:
- **returned => documented**, per test: a test that received a status its operation does not
  document gets an error at teardown naming the operation and the status. Works in any run.
- **documented => reached**, per run: when the whole integration, e2e and faults tiers ran
  unfiltered and passed, every documented status of 300 and over must have been received by
  some test, or the run fails with the list. A partial run says that it skipped this check.
  Under pytest-xdist (`make test` runs the suite on several workers) each worker sends what
  its tests received to the controller, which checks the union.
Responses to paths no route answers (404 for an unknown URL, 405) belong to no operation.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask, request_finished
from werkzeug.exceptions import HTTPException

from tests.support.openapi import METHODS, documented_statuses, reference, spec_path

ROOT = Path(__file__).resolve().parents[2]
FULL_RUN_TIERS = ("integration", "e2e", "faults")

_pending: list[tuple[str, str, int]] = []  # (method, path, status) since the last check
_reached: dict[tuple[str, str], set[int]] = defaultdict(set)
_state: dict[str, Any] = {"complete": False}
WORKER_KEY = "vid2mp3_api_statuses"  # what an xdist worker sends its controller


def record_http(response: Any, *args: Any, **kwargs: Any) -> None:
    """A `requests` response hook: record what an HTTP client of the stack received."""
    from urllib.parse import unquote, urlsplit

    _pending.append(
        (
            response.request.method,
            unquote(urlsplit(response.request.url).path),
            response.status_code,
        )
    )


def _on_request_finished(sender: Flask, response: Any, **extra: Any) -> None:
    from flask import request

    _pending.append((request.method, request.path, response.status_code))


def _operation(method: str, path: str) -> tuple[str, str] | None:
    """The documented operation a request reached; HEAD of a GET route counts as the GET."""
    app, spec = reference()
    try:
        rule, _ = app.url_map.bind("localhost").match(path, method, return_rule=True)
    except HTTPException:
        return None
    documented = spec["paths"].get(spec_path(rule.rule), {})
    for candidate in (method.lower(), "get" if method == "HEAD" else None):
        if candidate in documented:
            return spec_path(rule.rule), candidate
    return None


def _undocumented(responses: list[tuple[str, str, int]]) -> list[str]:
    _, spec = reference()
    problems = []
    for method, path, status in responses:
        operation = _operation(method, path)
        if operation is None:
            continue
        _reached[operation].add(status)
        if status not in documented_statuses(spec, *operation):
            problems.append(
                f"{operation[1].upper()} {operation[0]} answered {status} "
                f"({method} {path}), which its OpenAPI operation does not document"
            )
    return sorted(set(problems))


@pytest.fixture(autouse=True)
def _statuses_are_documented() -> Iterator[None]:
    """Checks what the test, and the fixtures set up for it, received."""
    yield
    seen = list(_pending)
    _pending.clear()
    problems = _undocumented(seen)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    request_finished.connect(_on_request_finished)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The run is complete when every test file of the HTTP tiers was collected, unfiltered."""
    option = session.config.option
    filtered = any(
        getattr(option, name, None) for name in ("keyword", "markexpr", "lf", "deselect")
    ) or any("::" in arg for arg in session.config.args)
    collected = {Path(str(item.path)).resolve() for item in session.items}
    expected = {
        path.resolve()
        for tier in FULL_RUN_TIERS
        for path in (ROOT / "tests" / tier).glob("test_*.py")
    }
    _state["complete"] = not filtered and expected <= collected


def _unreached() -> list[str]:
    _, spec = reference()
    missing = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for status in documented_statuses(spec, path, method):
                if status >= 300 and status not in _reached[(path, method)]:
                    described = operation["responses"][str(status)]
                    missing.append(
                        f"{method.upper()} {path} documents {status}: "
                        f"{described.get('description') or described.get('$ref')}"
                    )
    return missing


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workeroutput")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller: a worker's statuses join the run's (each worker collected
    every test, so each knows whether the run is complete)."""
    report = getattr(node, "workeroutput", {}).get(WORKER_KEY)
    if report is None:
        _state["worker_missing"] = True
        return
    _state.setdefault("worker_complete", []).append(report["complete"])
    for operation, statuses in report["reached"]:
        _reached[tuple(operation)].update(statuses)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _is_xdist_worker(session.config):
        session.config.workeroutput[WORKER_KEY] = {  # type: ignore[attr-defined]
            "complete": _state["complete"],
            "reached": [[list(op), sorted(st)] for op, st in _reached.items()],
        }
        return
    if "worker_complete" in _state:  # the controller of an xdist run
        reports = _state["worker_complete"]
        _state["complete"] = all(reports) and not _state.get("worker_missing")
    _state["unreached"] = _unreached() if _state["complete"] else None
    _state["passed"] = exitstatus == 0 and session.testsfailed == 0
    if _state["unreached"] and _state["passed"]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _is_xdist_worker(terminalreporter.config):
        return
    unreached = _state.get("unreached")
    if unreached:
        verdict = "the run fails" if _state["passed"] else "not enforced: tests failed"
        terminalreporter.section(
            f"OpenAPI: documented statuses no test received ({verdict})", red=True
        )
        for line in unreached:
            terminalreporter.line(line)
    elif unreached == []:
        terminalreporter.line("OpenAPI: every documented status was received by some test")
    elif _reached:
        terminalreporter.line(
            "OpenAPI: partial run; reachability of documented statuses not "
            "checked (run the integration, e2e and faults tiers unfiltered)"
        )
