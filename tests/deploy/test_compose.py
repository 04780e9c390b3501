"""docker-compose.yml follows the Compose specification and runs the stack that
docs/operations.md describes; the Dockerfile and .dockerignore build the one image every
process runs."""

from __future__ import annotations

import fnmatch
import re
import shlex

import pytest

from tests.deploy.support import (
    APP_COMPONENTS,
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    MIGRATE,
    MIGRATE_COMMAND,
    ROOT,
    SCHEMA_USERS,
    compose,
    compose_env_files,
    env_example,
    run,
    settings_variables,
    venv_tool,
)

DATA_STORE_SERVICES = {"mysql": "/var/lib/mysql", "redis": "/data", "mongo": "/data/db"}
SERVICES = {*DATA_STORE_SERVICES, "mailpit", *APP_COMPONENTS, MIGRATE}


# --- docker-compose.yml -------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec():
    """check-jsonschema ships the compose-spec schema: no network needed."""
    result = run(
        [
            venv_tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_uses_the_specification_format_with_every_service():
    spec = compose()
    assert "version" not in spec, "the Compose specification has no top-level `version:`"
    assert set(spec["services"]) == SERVICES


@pytest.mark.parametrize(
    "service, pattern",
    [
        ("mysql", r"mysql:8(\.\d+)*"),
        ("redis", r"redis:7(\.\d+)*"),
        ("mongo", r"mongo:7(\.\d+)*"),
        ("mailpit", r"axllent/mailpit:v1(\.\d+)*"),
    ],
)
def test_data_store_images_are_the_pinned_major_versions(service, pattern):
    assert re.fullmatch(pattern, compose()["services"][service]["image"])


def test_redis_keeps_the_broker_persistent_and_never_evicts():
    command = compose()["services"]["redis"]["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    pairs = dict(zip(command[1::2], command[2::2]))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--maxmemory-policy"] == "noeviction"


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = compose()["services"]
    for name, service in services.items():
        check = service.get("healthcheck", {})
        # beat answers no ping, the migration exits: the image's API check must not apply
        if name in ("beat", MIGRATE):
            assert check == {"disable": True}
            continue
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, rule in depends.items():
            if dependency == MIGRATE:
                assert rule["condition"] == "service_completed_successfully", name
                continue
            assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert not services[dependency].get("healthcheck", {}).get("disable")
    for name in SCHEMA_USERS:
        assert {"mysql", "redis", "mongo"} <= set(services[name]["depends_on"]), name


def test_the_migration_runs_once_before_the_api_and_workers_start():
    """A one-shot: it waits for MySQL, exits, is never restarted; whatever uses MySQL starts
    only once it exited 0."""
    services = compose()["services"]
    migrate = services[MIGRATE]
    assert migrate["command"] == MIGRATE_COMMAND
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"mysql": {"condition": "service_healthy"}}
    waiting = {
        name
        for name, service in services.items()
        if service.get("depends_on", {}).get(MIGRATE, {}).get("condition")
        == "service_completed_successfully"
    }
    assert waiting == set(SCHEMA_USERS)


def test_workers_scale_with_docker_compose_up_scale():
    """`docker compose up --scale worker-convert=4` needs no fixed name and no host port."""
    for name, service in compose()["services"].items():
        assert "container_name" not in service, name
    for name in ("worker-convert", "worker-notify", "worker-webhooks", "worker-fetch", "beat"):
        assert "ports" not in compose()["services"][name], name


def test_data_lives_in_named_volumes():
    spec = compose()
    for name, path in DATA_STORE_SERVICES.items():
        mounts = {m.split(":")[1]: m.split(":")[0] for m in spec["services"][name]["volumes"]}
        assert mounts.get(path) in spec["volumes"], f"{name}: {path} is not a named volume"


def test_mailpit_catches_the_mail_and_shows_it():
    services = compose()["services"]
    assert any(str(p).endswith(":8025") for p in services["mailpit"]["ports"])
    for name in APP_COMPONENTS:
        assert services[name]["environment"]["SMTP_URL"] == "smtp://mailpit:1025"


def test_settings_and_secrets_come_from_dot_env():
    for name in (*APP_COMPONENTS, MIGRATE):
        assert compose_env_files(compose()["services"][name]) == [".env"], name
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert ".env" in gitignore


# --- .env.example -------------------------------------------------------------------------


def test_env_example_documents_every_line():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"[A-Z_][A-Z0-9_]*=", line):
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#") and len(above) > 2, (
                f".env.example:{number + 1}: {line.split('=')[0]} has no comment above it"
            )


def test_env_example_ships_no_secret_and_is_refused_until_filled_in():
    from core.settings import ConfigError, Settings

    values = env_example()
    for var, entry in settings_variables().items():
        if entry["secret"] and var in values:
            assert values[var] in ("", "admin:"), f".env.example gives {var} a value"
    for var in ("MYSQL_ROOT_PASSWORD", "MONGO_ROOT_PASSWORD", "REDIS_PASSWORD"):
        assert values[var] == "", var
    with pytest.raises(ConfigError):
        Settings.from_env(values, dotenv_path=None)


# --- Dockerfile and .dockerignore ---------------------------------------------------------


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions (keyword, arguments) per build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args.strip()))
    return stages


def _final_stage() -> list[tuple[str, str]]:
    return _dockerfile_stages()[-1]


def test_image_is_multi_stage_with_a_lean_final_stage():
    stages = _dockerfile_stages()
    assert len(stages) >= 2
    final = _final_stage()
    runs = " ".join(args for keyword, args in final if keyword == "RUN")
    for tool in ("gcc", "g++", "build-essential", "clang", "make", "cc", "ffmpeg", "pip install"):
        assert not re.search(rf"(^|\s){re.escape(tool)}(\s|$)", runs), f"final stage has {tool}"
    assert any(k == "COPY" and "--from=builder" in a and "/opt/venv" in a for k, a in final)


def test_image_installs_the_project_from_pyproject_without_editable_mode():
    builder = " ".join(args for keyword, args in _dockerfile_stages()[0] if keyword == "RUN")
    assert re.search(r"pip install \.(\s|$)", builder)
    assert "-e " not in builder and "requirements" not in DOCKERFILE.read_text()


def test_image_runs_as_a_non_root_user_with_a_healthcheck():
    final = _final_stage()
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(keyword == "HEALTHCHECK" for keyword, _ in final)
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    # gunicorn >= 25 puts a control socket under $HOME unless XDG_RUNTIME_DIR is set; with a
    # read-only root (Kubernetes) it must land in /tmp, which is an emptyDir there.
    assert "XDG_RUNTIME_DIR=/tmp" in env
    copied = " ".join(args for keyword, args in final if keyword == "COPY")
    assert "gunicorn.conf.py" in copied, "gunicorn reads gunicorn.conf.py from the workdir"


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/").removeprefix("**/")
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(
            fnmatch.fnmatch(p, glob) or fnmatch.fnmatch(p.split("/")[-1], glob) for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_data_and_virtualenvs_out_but_not_the_sources():
    patterns = _dockerignore_patterns()
    for path in (
        ".env",
        ".env.local",
        "data/blobs/x",
        ".venv/bin/python",
        "venv/bin/python",
        ".git/config",
        "core/__pycache__/x.pyc",
    ):
        assert _ignored(path, patterns), f"{path} would be sent to the build"
    sources = []
    for keyword, args in _dockerfile_stages()[0] + _final_stage():
        if keyword == "COPY" and "--from" not in args:
            sources += [s.rstrip("/") for s in args.split()[:-1] if not s.startswith("--")]
    assert "pyproject.toml" in sources and "gunicorn.conf.py" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not _ignored(source, patterns), f".dockerignore hides {source} from COPY"
