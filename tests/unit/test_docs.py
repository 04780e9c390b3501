"""The README and docs/ say what the code does: their links lead somewhere, the commands and
routes they show exist, and the settings table is the one Settings makes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from devtools import config_docs
from tests.support.markdown import DOCUMENTS, ROOT, cell_code_spans, read
from tests.support.openapi import DOC_ROUTES, documented_operations, reference, spec_path

README = ROOT / "README.md"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _names(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


# ---- links ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCUMENTS, ids=_names(DOCUMENTS))
def test_every_relative_link_and_anchor_resolves(path):
    document = read(path)
    broken = []
    for link in document.links():
        if urlsplit(link).scheme:  # https:, mailto: ... are the world's to keep
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / unquote(target)).resolve() if target else path
        if not file.exists():
            broken.append(f"{link}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in read(file).anchors():
            broken.append(f"{link}: no heading with the anchor #{anchor} in {file.name}")
    assert not broken, f"{document.name}: " + "; ".join(broken)


# Code spans that name a file or folder of this repository: they must exist. Spans with a
# placeholder (`<id>`, `*`, `$VAR`, `{x}`) name a pattern, not a path.
_REPO_PATH = re.compile(
    r"(?:\.ci|api|bench|client|core|devtools|docs|k8s|migrations|scripts|tasks|tests|workers)"
    r"/[\w./-]*"
)
_MODULE = re.compile(r"python -m ([\w.]+)")


@pytest.mark.parametrize("path", DOCUMENTS, ids=_names(DOCUMENTS))
def test_every_repository_path_named_exists(path):
    document = read(path)
    missing = []
    for span in document.code_spans():
        if _REPO_PATH.fullmatch(span) and not (ROOT / span).exists():
            missing.append(span)
        for module in _MODULE.findall(span):
            parts = module.split(".")
            if not (ROOT / parts[0]).is_dir():
                continue  # pytest, pip: not ours
            base = ROOT.joinpath(*parts)
            if not (base.with_suffix(".py").exists() or (base / "__init__.py").exists()):
                missing.append(span)
    assert not missing, f"{document.name} names what the repository lacks: {missing}"


# ---- make targets -------------------------------------------------------------------------


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))


def _make_commands(text: str) -> list[str]:
    return re.findall(r"(?:^|[\s`(;])make ([a-z][\w-]*)", text, re.MULTILINE)


@pytest.mark.parametrize("path", DOCUMENTS, ids=_names(DOCUMENTS))
def test_every_make_command_shown_is_a_target_of_the_makefile(path):
    document = read(path)
    shown = [
        target
        for text in document.code_spans() + document.code_blocks()
        for target in _make_commands(text)
    ]
    unknown = sorted(set(shown) - _make_targets())
    assert not unknown, f"{document.name} shows `make {unknown[0]}`, which the Makefile lacks"


def test_the_quickstart_serves_with_make_up_and_tests_with_make_test():
    quickstart = read(README).section("Quickstart")
    commands = [
        line.split("#")[0].split()
        for block in quickstart.code_blocks()[:1]
        for line in block.splitlines()
    ]
    assert ["make", "up"] in commands and ["make", "test"] in commands, commands
    assert "make migrate" in quickstart.code_spans()
    assert {"up", "test", "migrate"} <= _make_targets()


# ---- routes -------------------------------------------------------------------------------


def _operation(method: str, url_path: str) -> tuple[str, str] | None:
    """The (spec path, method) the app routes `method url_path` to; None when it routes
    nowhere. Placeholders (`<id>`, `$JOB`) stand for a well-formed id."""
    app, _ = reference()
    concrete = re.sub(r"<[^<>]+>|\$\{?\w+\}?", "1", url_path.split("?")[0])
    adapter = app.url_map.bind("localhost")
    try:
        rule, _ = adapter.match(concrete, method=method, return_rule=True)
    except Exception:  # NotFound, MethodNotAllowed, RequestRedirect
        return None
    return spec_path(rule.rule), method.lower()


def _documented(method: str, url_path: str) -> bool:
    _, spec = reference()
    found = _operation(method, url_path)
    if found is None:
        return False
    path, verb = found
    operations = documented_operations(spec)
    if path in {spec_path(route) for route in DOC_ROUTES}:
        return verb in ("get", "head")
    return (path, verb) in operations or (verb == "head" and (path, "get") in operations)


_ROUTE_SPAN = re.compile(rf"((?:{'|'.join(METHODS)})(?:/(?:{'|'.join(METHODS)}))*) (/\S*)")


def _route_spans(document) -> list[tuple[str, str]]:
    """(method, path) of every `METHOD /path` code span; `GET/HEAD /x` counts twice."""
    found = []
    for span in document.code_spans():
        for match in _ROUTE_SPAN.finditer(span):
            found += [(method, match.group(2)) for method in match.group(1).split("/")]
    return found


@pytest.mark.parametrize("path", DOCUMENTS, ids=_names(DOCUMENTS))
def test_every_route_named_is_routed_and_documented_in_openapi(path):
    document = read(path)
    unknown = [f"{m} {p}" for m, p in _route_spans(document) if not _documented(m, p)]
    assert not unknown, f"{document.name} names routes /openapi.json lacks: {unknown}"


def test_the_route_table_lists_every_operation_of_the_openapi_document():
    _, spec = reference()
    table = read(ROOT / "docs/api.md").section("Routes").tables()[0]
    listed = set()
    for row in table:
        for span in cell_code_spans(row[0]):
            for method, path in _route_spans_of(span):
                listed.add((_template(path), method.lower()))
    missing = sorted(
        f"{method.upper()} {path}"
        for path, method in documented_operations(spec)
        if (_template(path), method) not in listed
    )
    assert not missing, f"docs/api.md's route table lacks {missing}"


def _route_spans_of(span: str) -> list[tuple[str, str]]:
    return [
        (method, match.group(2))
        for match in _ROUTE_SPAN.finditer(span)
        for method in match.group(1).split("/")
    ]


def _template(path: str) -> str:
    """/jobs/<id>, /jobs/{job_id} and /jobs/<job_id>?x= all as /jobs/{}."""
    return re.sub(r"<[^<>]+>|\{[^{}]+\}", "{}", path.split("?")[0])


_API_BASE = re.compile(r"^(?:\$\{?API\}?|https?://127\.0\.0\.1:8080)(?=/)")
_VALUE_OPTIONS = {"-X", "-H", "-F", "-d", "-u", "-o", "--data", "--form", "--header", "-T"}


def _curl_calls(block: str) -> list[tuple[str, str]]:
    """(method, path) of every curl command against the API in a shell block."""
    text = re.sub(r"\\\n", " ", block)  # continuation lines
    text = re.sub(r"<[^<>\s]+>", "ID", text).replace("$(", " ( ")
    calls = []
    for line in text.splitlines():
        if not re.search(r"\bcurl\b", line):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";|&()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        while "curl" in tokens:
            args = tokens[tokens.index("curl") + 1 :]
            end = next((i for i, t in enumerate(args) if t and set(t) <= set(";|&()")), None)
            tokens, args = (args[end:], args[:end]) if end is not None else ([], args)
            calls += _curl_call(args)
    return calls


def _curl_call(args: list[str]) -> list[tuple[str, str]]:
    method, url, skip = None, None, False
    posts = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in _VALUE_OPTIONS:
            skip = True
            if arg == "-X":
                method = args[index + 1]
            posts = posts or arg in ("-F", "-d", "--data", "--form")
        elif arg.startswith("-"):
            method = "HEAD" if arg == "-I" else method
        elif _API_BASE.match(arg) and url is None:
            url = _API_BASE.sub("", arg)
    if url is None:
        return []  # "$URL", another host: not this API's route table
    return [(method or ("POST" if posts else "GET"), url)]


def test_the_curl_examples_call_routes_of_the_openapi_document():
    calls = {
        (read(path).name, method, url)
        for path in DOCUMENTS
        for block in read(path).code_blocks()
        for method, url in _curl_calls(block)
    }
    assert len(calls) >= 15, f"the curl examples were not read: {sorted(calls)}"
    unknown = sorted(f"{name}: {m} {u}" for name, m, u in calls if not _documented(m, u))
    assert not unknown, f"curl examples call routes /openapi.json lacks: {unknown}"


# ---- configuration ------------------------------------------------------------------------


def test_the_configuration_docs_are_what_settings_make():
    current = config_docs.CONFIG_DOC.read_text()
    assert current == config_docs.render(current), (
        "docs/configuration.md's settings table differs from core/settings.py: "
        "run python -m devtools.config_docs"
    )


def test_the_configuration_table_names_every_setting_once():
    from core.settings import Settings

    table = read(config_docs.CONFIG_DOC).tables()[0]
    variables = [cell_code_spans(row[0])[0] for row in table]
    assert variables == [entry["env"] for entry in Settings.documented()]
