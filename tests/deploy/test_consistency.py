"""The code, docker-compose.yml and k8s/ agree: every variable the code reads is provided,
secrets come from secrets, and images, commands, ports and queue names match everywhere."""

from __future__ import annotations

import ast
import importlib.util
import re
from urllib.parse import urlsplit

import pytest

from tests.deploy.support import (
    APP_COMPONENTS,
    DOCKERFILE,
    EXEMPT_FROM_DEPLOYMENT,
    MIGRATE,
    MIGRATE_COMMAND,
    OVERLAYS,
    ROOT,
    SCHEMA_USERS,
    app_container,
    built,
    code_variables,
    compose,
    compose_env_files,
    compose_environment,
    configmap,
    container_env,
    duration_seconds,
    env_example,
    environ_reads,
    find,
    image_containers,
    interpolate,
    is_secret,
    migrate_container,
    one,
    pod_spec,
    scan_environ_reads,
    schema_wait,
    secret_templates,
    settings_variables,
)

# What each process runs: the same argv in the Dockerfile (api), compose and Kubernetes.
COMMANDS = {
    "api": ["gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"],
    "worker-convert": ["python", "-m", "workers.convert"],
    "worker-notify": ["python", "-m", "workers.notify"],
    "worker-webhooks": ["python", "-m", "workers.webhooks"],
    "worker-fetch": ["python", "-m", "workers.fetch"],
    "beat": ["python", "-m", "workers.beat"],
    "flower": ["python", "-m", "workers.flower", "--address=0.0.0.0"],
}


def _queues() -> dict[str, str]:
    import celeryconfig

    return {
        "worker-convert": celeryconfig.CONVERT_QUEUE,
        "worker-notify": celeryconfig.NOTIFY_QUEUE,
        "worker-webhooks": celeryconfig.WEBHOOKS_QUEUE,
        "worker-fetch": celeryconfig.FETCH_QUEUE,
    }


def _required() -> set[str]:
    return set(code_variables()) - set(EXEMPT_FROM_DEPLOYMENT)


def _compose_provided(service: dict) -> dict[str, str]:
    """Variables a compose service's containers get: .env (as .env.example) then environment."""
    provided = dict(env_example()) if ".env" in compose_env_files(service) else {}
    provided.update(
        {k: interpolate(v, env_example()) for k, v in compose_environment(service).items()}
    )
    return provided


def _db_index(url: str) -> int:
    return int(urlsplit(url).path.strip("/") or 0)


def _port_of(mapping: str) -> int:
    return int(interpolate(str(mapping), env_example()).split(":")[-1].split("/")[0])


# --- the variables the code reads --------------------------------------------------------


def test_the_scan_finds_environment_reads_outside_settings():
    scanned, dynamic = scan_environ_reads()
    assert not dynamic, (
        "environment reads whose name is not a literal; the consistency "
        f"checks cannot see them: {dynamic}"
    )
    # One source of configuration: Celery's and gunicorn's settings come from Settings, not
    # from the environment.
    for module in ("celeryconfig.py", "gunicorn.conf.py"):
        assert not [var for var, where in scanned.items() if module in where], module
    snippet = (
        "import os\nA = os.environ['NEW_A']\nB = os.environ.get('NEW_B', '1')\n"
        "C = os.getenv('NEW_C')\n"
    )
    keys = {key.value for _, key, _ in environ_reads(ast.parse(snippet))}
    assert keys == {"NEW_A", "NEW_B", "NEW_C"}


def test_modules_reading_the_same_variable_agree_on_its_default():
    scanned, _ = scan_environ_reads()
    for var, defaults in scanned.items():
        seen = {str(d).lower() for d in defaults.values() if d is not None}
        if var in settings_variables():
            seen.add(str(settings_variables()[var]["default"]).lower())
        assert len(seen) <= 1, f"{var} has different defaults: {defaults}"


def test_exemptions_are_few_explained_and_really_left_out():
    assert set(EXEMPT_FROM_DEPLOYMENT) <= set(code_variables()), "exempting an unread variable"
    assert len(EXEMPT_FROM_DEPLOYMENT) <= 1
    assert all(len(reason) > 40 for reason in EXEMPT_FROM_DEPLOYMENT.values())
    for var in EXEMPT_FROM_DEPLOYMENT:
        assert var not in env_example()
        for name in (*APP_COMPONENTS, MIGRATE):
            assert var not in compose_environment(compose()["services"][name])
        for overlay in OVERLAYS:
            docs = built(overlay)
            for container in image_containers(docs).values():
                assert var not in container_env(docs, container)


def test_env_example_documents_every_variable_the_code_reads():
    missing = sorted(_required() - set(env_example()))
    assert not missing, f".env.example does not document {missing}"


@pytest.mark.parametrize("service", (*APP_COMPONENTS, MIGRATE))
def test_compose_provides_every_variable(service):
    missing = sorted(_required() - set(_compose_provided(compose()["services"][service])))
    assert not missing, f"compose service {service} does not get {missing}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_provides_every_variable(overlay):
    """To every container of the image: the Deployments', their init containers', the Job's."""
    docs = built(overlay)
    for where, container in image_containers(docs).items():
        missing = sorted(_required() - set(container_env(docs, container)))
        assert not missing, (
            f"{overlay}: {where} gets neither from vid2mp3-config nor from a Secret: {missing}"
        )


# --- secrets ------------------------------------------------------------------------------

_PASSWORD_IN_URL = re.compile(r"://[^/@\s]*:[^/@\s]+@")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_secrets_come_only_from_secrets(overlay):
    docs = built(overlay)
    for var, value in configmap(docs).items():
        assert not is_secret(var), f"{var} is a secret but sits in the ConfigMap"
        assert not _PASSWORD_IN_URL.search(value), f"{var} carries a password in the ConfigMap"
    for where, container in image_containers(docs).items():
        for var, (source, value) in container_env(docs, container).items():
            if is_secret(var) or _PASSWORD_IN_URL.search(value):
                assert source == "secret", f"{where}: {var} comes from {source}"


def test_compose_writes_no_secret_into_the_file():
    literal = re.compile(r"\$\{[^}]*\}")
    for name, service in compose()["services"].items():
        for var, value in compose_environment(service).items():
            bare = literal.sub("", value)
            assert not _PASSWORD_IN_URL.search(bare), f"{name}: {var} has a literal password"
            if is_secret(var) and var != "SMTP_URL":
                assert "${" in value, f"{name}: secret {var} is written into the file"
            if "PASSWORD" in var:
                assert value.startswith("${"), f"{name}: {var} is written into the file"


# --- where the containers connect ---------------------------------------------------------


@pytest.mark.parametrize("service", (*APP_COMPONENTS, MIGRATE))
def test_compose_points_every_connection_at_a_compose_service(service):
    services = compose()["services"]
    env = _compose_provided(services[service])
    assert env["API_HOST"] == "0.0.0.0"
    assert env["DATA_DIR"].startswith("/")
    assert env["MYSQL_HOST"] in services
    for var in ("REDIS_URL", "CELERY_BROKER_URL", "MONGO_URI", "SMTP_URL"):
        assert urlsplit(env[var]).hostname in services, f"{service}: {var}={env[var]}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_points_every_connection_at_a_service(overlay):
    docs = built(overlay)
    services = {s["metadata"]["name"] for s in find(docs, "Service")}
    settings = configmap(docs)
    secrets = secret_templates()["vid2mp3-secrets"]
    assert settings["API_HOST"] == "0.0.0.0"
    assert settings["MYSQL_HOST"] in services
    assert secrets["MONGO_URI"], "GridFS, not a directory store: pods share no directory"
    for var in ("REDIS_URL", "CELERY_BROKER_URL", "MONGO_URI"):
        assert urlsplit(secrets[var]).hostname in services, f"{var}={secrets[var]}"


# --- commands, images, ports ---------------------------------------------------------------


def test_commands_name_code_that_exists():
    assert (ROOT / COMMANDS["api"][2]).is_file()
    module, _, attribute = COMMANDS["api"][3].partition(":")
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    assigned = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert attribute in assigned, f"{module} defines no {attribute}"
    for argv in list(COMMANDS.values())[1:] + [["python", "-m", "workers.health"]]:
        assert importlib.util.find_spec(argv[2]) is not None, argv[2]


def _dockerfile_instruction(keyword: str) -> list[str]:
    import json

    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith(keyword + " ")]
    return json.loads(lines[-1][len(keyword) + 1 :])


def test_every_process_runs_the_same_command_in_the_image_compose_and_kubernetes():
    assert _dockerfile_instruction("CMD") == COMMANDS["api"]
    for name, argv in COMMANDS.items():
        assert compose()["services"][name]["command"] == argv, f"compose {name}"
    assert compose()["services"][MIGRATE]["command"] == MIGRATE_COMMAND
    for overlay in OVERLAYS:
        docs = built(overlay)
        for name, argv in COMMANDS.items():
            container = app_container(docs, name)
            # args, not command: the image's ENTRYPOINT (tini) stays PID 1
            assert "command" not in container and container["args"] == argv, f"{overlay} {name}"
        job = migrate_container(docs)
        assert "command" not in job and job["args"] == MIGRATE_COMMAND, overlay
        for component in SCHEMA_USERS:
            init = schema_wait(docs, component)
            assert "command" not in init and init["args"][:4] == [
                "python",
                "-m",
                "core.migrate",
                "--check",
            ], f"{overlay} {component}"


def test_the_migration_command_and_its_check_exist():
    from core.migrate import main

    assert importlib.util.find_spec("core.migrate") is not None
    with pytest.raises(SystemExit) as usage:
        main(["--help"])
    assert usage.value.code == 0


def test_workers_consume_and_probe_the_queues_celeryconfig_declares():
    import celeryconfig

    declared = set(celeryconfig.QUEUES)
    assert set(_queues().values()) == declared
    constants = {
        "worker-convert": "CONVERT_QUEUE",
        "worker-notify": "NOTIFY_QUEUE",
        "worker-webhooks": "WEBHOOKS_QUEUE",
        "worker-fetch": "FETCH_QUEUE",
    }
    for component, queue in _queues().items():
        module = COMMANDS[component][2]
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        consumed = [
            call.args[1].id
            for call in ast.walk(tree)
            if isinstance(call, ast.Call)
            and getattr(call.func, "id", "") == "run_worker"
            and isinstance(call.args[1], ast.Name)
        ]
        assert consumed == [constants[component]], f"{module} consumes {consumed}"
        probe = ["python", "-m", "workers.health", queue]
        assert compose()["services"][component]["healthcheck"]["test"] == ["CMD", *probe]
        for overlay in OVERLAYS:
            container = app_container(built(overlay), component)
            assert container["startupProbe"]["exec"]["command"] == probe


def test_the_broker_never_shares_the_items_database():
    """Users' TTL items live in REDIS_URL; the broker's queues must not be among them (the
    API also refuses to start if they are)."""
    from core.settings import same_redis_database

    pairs = {
        "Settings default": (
            settings_variables()["REDIS_URL"]["default"],
            settings_variables()["CELERY_BROKER_URL"]["default"],
        ),
        "secret template": (
            secret_templates()["vid2mp3-secrets"]["REDIS_URL"],
            secret_templates()["vid2mp3-secrets"]["CELERY_BROKER_URL"],
        ),
        ".env.example": (env_example()["REDIS_URL"], env_example()["CELERY_BROKER_URL"]),
        **{
            f"compose {name}": (
                _compose_provided(compose()["services"][name])["REDIS_URL"],
                _compose_provided(compose()["services"][name])["CELERY_BROKER_URL"],
            )
            for name in APP_COMPONENTS
            if "REDIS_URL" in _compose_provided(compose()["services"][name])
        },
    }
    for where, (items, broker) in pairs.items():
        assert not same_redis_database(items, broker), where


def test_keda_reads_each_queue_where_the_broker_keeps_it():
    """With the Redis broker a queue is the list named after it, in the broker's database."""
    docs = built("production")
    namespace = one(docs, "Deployment", "worker-convert")["metadata"]["namespace"]
    redis_port = one(docs, "Service", "redis")["spec"]["ports"][0]["port"]
    broker_dbs = {
        "Settings default": _db_index(settings_variables()["CELERY_BROKER_URL"]["default"]),
        "secret template": _db_index(secret_templates()["vid2mp3-secrets"]["CELERY_BROKER_URL"]),
        **{
            f"compose {name}": _db_index(
                _compose_provided(compose()["services"][name])["CELERY_BROKER_URL"]
            )
            for name in APP_COMPONENTS
        },
    }
    assert len(set(broker_dbs.values())) == 1, broker_dbs
    (broker_db,) = set(broker_dbs.values())
    for so in find(docs, "ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        (trigger,) = so["spec"]["triggers"]
        meta = trigger["metadata"]
        assert meta["listName"] == _queues()[target]
        assert int(meta["databaseIndex"]) == broker_db
        host, port = meta["address"].rsplit(":", 1)
        assert host in (
            f"redis.{namespace}.svc.cluster.local",
            f"redis.{namespace}.svc",
            f"redis.{namespace}",
        ), "KEDA runs in another namespace: use the full name"
        assert int(port) == redis_port


def test_one_image_for_every_process():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    services = compose()["services"]
    compose_images = {services[name]["image"] for name in (*APP_COMPONENTS, MIGRATE)}
    assert len(compose_images) == 1
    assert next(iter(compose_images)).split(":")[0] == project
    for name in (*APP_COMPONENTS, MIGRATE):
        assert services[name]["build"]["context"] == "."
    # the migration, the init containers' check and the processes: one build, one schema
    local = {c["image"] for c in image_containers(built("local")).values()}
    assert local == compose_images, "the local overlay runs the image compose builds"
    production = {c["image"] for c in image_containers(built("production")).values()}
    (image,) = production
    repository, _, tag = image.rpartition(":")
    assert repository.rsplit("/", 1)[-1] == project and tag not in ("", "dev", "latest")


@pytest.mark.parametrize(
    "component, variable, port_name",
    [("api", "API_PORT", "http"), ("flower", "FLOWER_PORT", "http")],
)
def test_ports_agree(component, variable, port_name):
    default = settings_variables()[variable]["default"]
    assert int(env_example()[variable]) == default
    exposed = _dockerfile_exposed()
    assert default in exposed, f"Dockerfile does not EXPOSE {default}"
    (mapping,) = compose()["services"][component]["ports"]
    assert _port_of(mapping) == default
    assert int(interpolate(str(mapping), env_example()).split(":")[-2]) == default
    for overlay in OVERLAYS:
        docs = built(overlay)
        assert int(configmap(docs)[variable]) == default
        container = app_container(docs, component)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[port_name] == default
        service = one(docs, "Service", component)
        assert [p["targetPort"] for p in service["spec"]["ports"]] == [port_name]


def _dockerfile_exposed() -> set[int]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("EXPOSE ")]
    return {int(p.split("/")[0]) for line in lines for p in line.split()[1:]}


def test_probe_paths_are_routes_of_the_api():
    routes = set(
        re.findall(r'route\("([^"]+)"', "".join(p.read_text() for p in (ROOT / "api").glob("*.py")))
    )
    container = app_container(built("production"), "api")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] in routes, probe
    assert {"/healthz", "/readyz"} <= routes


# --- stopping a conversion ----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_grace_period_outlasts_the_conversion_limits(overlay):
    """A scale-down sends SIGTERM; Celery's warm shutdown lets the running conversion finish."""
    docs = built(overlay)
    settings = configmap(docs)
    soft, hard = int(settings["CONVERT_SOFT_TIME_LIMIT"]), int(settings["CONVERT_TIME_LIMIT"])
    grace = pod_spec(one(docs, "Deployment", "worker-convert"))["terminationGracePeriodSeconds"]
    assert grace > soft, f"grace {grace} s does not exceed CONVERT_SOFT_TIME_LIMIT {soft} s"
    assert grace > hard, f"grace {grace} s does not exceed CONVERT_TIME_LIMIT {hard} s"


def test_compose_stop_grace_period_outlasts_the_conversion_limits():
    settings = _compose_provided(compose()["services"]["worker-convert"])
    grace = duration_seconds(compose()["services"]["worker-convert"]["stop_grace_period"])
    assert grace > int(settings["CONVERT_SOFT_TIME_LIMIT"])
    assert grace > int(settings["CONVERT_TIME_LIMIT"])
