"""Shared by the deployment tests: the tools, the built overlays, compose, the code's env vars."""

from __future__ import annotations

import ast
import copy
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.support.wait import scaled

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("local", "production")
SECRET_TEMPLATE = K8S / "base" / "secrets.example.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
KEDA_SCHEMAS = ROOT / "tests" / "schemas" / "keda"

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# The Kubernetes release the manifests are validated against (kubernetes-validate --strict).
KUBERNETES_VERSION = "1.35.0"

# Every process that runs the vid2mp3 image: compose service == k8s Deployment == component label.
APP_COMPONENTS = (
    "api",
    "worker-convert",
    "worker-notify",
    "worker-webhooks",
    "worker-fetch",
    "beat",
    "flower",
)
DATA_STORES = ("mysql", "mongodb", "redis")
# The schema migration runs once per deploy, to its end: compose's one-shot service and
# Kubernetes' Job, both named `migrate`, same image. The processes that use MySQL wait for it.
MIGRATE = "migrate"
MIGRATE_COMMAND = ["python", "-m", "core.migrate", "--wait", "300"]
SCHEMA_USERS = ("api", "worker-convert", "worker-notify", "worker-webhooks", "worker-fetch")

# The project's own modules, scanned for environment reads.
CODE_PATHS = ("api", "core", "tasks", "workers", "celeryconfig.py", "gunicorn.conf.py")

# Variables the code reads that deployments must NOT set, each with its reason.
EXEMPT_FROM_DEPLOYMENT = {
    "CELERY_KEY_PREFIX": "test isolation only (each test run prefixes its broker keys); a "
    "deployment keeps it empty, because KEDA's listName is the bare queue "
    "name and Flower and the workers must see the same keys",
}


# --- tools -------------------------------------------------------------------------------


def venv_tool(name: str) -> str:
    """A console script installed beside this interpreter (the project's virtualenv)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(
            f"{name} is not installed next to {sys.executable}; run `make install` "
            f"(it is in the project's [test] extras)"
        )
    return str(path)


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        pytest.fail(
            "kubectl is not on PATH: the deployment tests build the kustomize overlays "
            "with `kubectl kustomize` (install kubectl >= 1.27; CI has it)"
        )
    return found


def run(
    argv: list[str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=scaled(timeout), cwd=ROOT
    )


# --- kustomize ---------------------------------------------------------------------------


@functools.cache
def build_text(overlay: str) -> str:
    """`kubectl kustomize` of an overlay (or of "base"), as YAML text."""
    path = K8S / "base" if overlay == "base" else K8S / "overlays" / overlay
    result = run([kubectl(), "kustomize", str(path)])
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {path.relative_to(ROOT)} failed:\n{result.stderr}")
    return result.stdout


@functools.cache
def _parsed(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(doc for doc in yaml.load_all(build_text(overlay), Loader=_LOADER) if doc)


def built(overlay: str) -> list[dict[str, Any]]:
    """The resources of a built overlay (a fresh copy each call, so a test may change it)."""
    return copy.deepcopy(list(_parsed(overlay)))


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def app_container(docs: list[dict], component: str) -> dict:
    deployment = one(docs, "Deployment", component)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def migrate_container(docs: list[dict]) -> dict:
    """The container of the migration Job."""
    (container,) = pod_spec(one(docs, "Job", MIGRATE))["containers"]
    return container


def schema_wait(docs: list[dict], component: str) -> dict:
    """The init container by which a Deployment waits for the schema."""
    (init,) = pod_spec(one(docs, "Deployment", component)).get("initContainers", [None])
    assert init is not None, f"{component} has no init container"
    return init


def image_containers(docs: list[dict]) -> dict[str, dict]:
    """Every container that runs the vid2mp3 image, by a name saying where it is."""
    found = {component: app_container(docs, component) for component in APP_COMPONENTS}
    found.update({f"{c} (init)": schema_wait(docs, c) for c in SCHEMA_USERS})
    found[f"Job {MIGRATE}"] = migrate_container(docs)
    return found


def configmap(docs: list[dict]) -> dict[str, str]:
    """The settings ConfigMap (its generated name carries a hash suffix)."""
    (cm,) = [
        d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("vid2mp3-config")
    ]
    return cm["data"]


@functools.cache
def secret_templates() -> dict[str, dict[str, str]]:
    """Secret name -> its placeholder data, from k8s/base/secrets.example.yaml."""
    docs = [d for d in yaml.safe_load_all(SECRET_TEMPLATE.read_text()) if d]
    return {d["metadata"]["name"]: d["stringData"] for d in docs}


def container_env(docs: list[dict], container: dict) -> dict[str, tuple[str, str]]:
    """Every variable a container gets -> (where from: literal|configmap|secret, value)."""
    env: dict[str, tuple[str, str]] = {}
    cm = configmap(docs)
    secrets = secret_templates()
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name.startswith("vid2mp3-config"), f"unexpected ConfigMap {name}"
            env.update({k: ("configmap", v) for k, v in cm.items()})
        elif "secretRef" in source:
            name = source["secretRef"]["name"]
            assert name in secrets, f"envFrom Secret {name} has no template in secrets.example.yaml"
            env.update({k: ("secret", v) for k, v in secrets[name].items()})
    for var in container.get("env", []):
        ref = var.get("valueFrom", {})
        if "secretKeyRef" in ref:
            key_ref = ref["secretKeyRef"]
            env[var["name"]] = ("secret", secrets[key_ref["name"]][key_ref["key"]])
        elif "configMapKeyRef" in ref:
            env[var["name"]] = ("configmap", cm[ref["configMapKeyRef"]["key"]])
        else:
            env[var["name"]] = ("literal", var.get("value", ""))
    return env


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# --- compose -----------------------------------------------------------------------------


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from `variables` (the .env)."""

    def substitute(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        return arg if op in (":-", "-") else f"<{name}>"

    return _INTERPOLATION.sub(substitute, value)


def compose_environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def compose_env_files(service: dict) -> list[str]:
    files = service.get("env_file", [])
    files = [files] if isinstance(files, (str, dict)) else files
    return [f["path"] if isinstance(f, dict) else f for f in files]


@functools.cache
def env_example() -> dict[str, str]:
    """KEY=value lines of .env.example (comments and blank lines skipped)."""
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}


def duration_seconds(text: str) -> float:
    """Compose durations: 1h2m3s, 90s, 1m30s, 500ms."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), f"bad duration {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- the code's environment variables -----------------------------------------------------


def _python_files() -> Iterator[Path]:
    for entry in CODE_PATHS:
        path = ROOT / entry
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def environ_reads(tree: ast.AST) -> Iterator[tuple[ast.AST, ast.AST, ast.AST | None]]:
    """(node, key, default) for each os.environ[key], os.environ.get(key, default) and
    os.getenv(key, default) in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            yield node, node.slice, None
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_method = (
                isinstance(func, ast.Attribute)
                and func.attr in ("get", "pop", "setdefault")
                and _is_os_environ(func.value)
            )
            getenv = (
                isinstance(func, ast.Attribute)
                and func.attr == "getenv"
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
            )
            if environ_method or getenv:
                default = node.args[1] if len(node.args) > 1 else None
                yield node, node.args[0], default


def scan_environ_reads() -> tuple[dict[str, dict[str, str | None]], list[str]]:
    """Literal names the project's modules read from the environment -> {file: default or
    None}; and the places that read a name that is not a literal (which no scan can follow)."""
    found: dict[str, dict[str, str | None]] = {}
    dynamic: list[str] = []
    for path in _python_files():
        rel = str(path.relative_to(ROOT))
        for node, key, default in environ_reads(ast.parse(path.read_text(), filename=rel)):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                literal = default.value if isinstance(default, ast.Constant) else None
                found.setdefault(key.value, {})[rel] = None if literal is None else str(literal)
            else:
                dynamic.append(f"{rel}:{node.lineno}")
    return found, dynamic


@functools.cache
def settings_variables() -> dict[str, dict[str, Any]]:
    from core.settings import Settings

    return {entry["env"]: entry for entry in Settings.documented()}


@functools.cache
def code_variables() -> frozenset[str]:
    """Every environment variable the project's code reads."""
    scanned, _ = scan_environ_reads()
    return frozenset(settings_variables()) | frozenset(scanned)


def is_secret(var: str) -> bool:
    return bool(settings_variables().get(var, {}).get("secret"))
