"""The S3 variants of the deployments: compose's override with a SeaweedFS service, and the
kustomize component for an external bucket, each built and validated offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from core.settings import ConfigError, Settings
from tests.deploy.support import (
    APP_COMPONENTS,
    K8S,
    KUBERNETES_VERSION,
    MIGRATE,
    ROOT,
    compose,
    env_example,
    find,
    image_containers,
    interpolate,
    kubectl,
    run,
    venv_tool,
)

COMPOSE_S3 = ROOT / "docker-compose.s3.yml"
COMPONENT = K8S / "components" / "s3"
SECRET_TEMPLATE = COMPONENT / "secret.example.yaml"


def override() -> dict:
    return yaml.safe_load(COMPOSE_S3.read_text())


# --- compose ------------------------------------------------------------------------------


def test_the_compose_override_validates_against_the_compose_spec():
    result = run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_S3)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_app_service_uses_the_bucket_and_not_mongodb():
    base, s3 = compose()["services"], override()["services"]
    filled = {**env_example(), "SEAWEEDFS_SECRET_KEY": "x" * 32, "REDIS_PASSWORD": "r"}
    for name in (*APP_COMPONENTS, MIGRATE):
        assert name in base, name
        environment = {k: interpolate(str(v), filled) for k, v in s3[name]["environment"].items()}
        assert environment["MONGO_URI"] == "", f"{name} would have two blob stores"
        assert environment["S3_BUCKET"] and environment["S3_ENDPOINT_URL"] == (
            "http://seaweedfs:8333"
        )
        assert environment["AWS_SECRET_ACCESS_KEY"] == "x" * 32
        if name != MIGRATE:
            assert s3[name]["depends_on"]["seaweedfs"]["condition"] == "service_healthy"


def test_the_s3_settings_of_the_override_pass_the_apps_checks():
    environment = dict(override()["x-s3-environment"])
    environment["AWS_ACCESS_KEY_ID"] = environment["AWS_SECRET_ACCESS_KEY"] = "set"
    for key in ("MONGO_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        environment.pop(key)
    base = {
        "JWT_SECRET": "Zq7-vR2m_Lp9xW4kT8nB3cY6hJ1sD5fG",
        "ADMIN_PASSWORD": "Kx8-wQ3mN7pL2v",
        "ADMIN_EMAIL": "admin@example.com",
    }
    settings = Settings.from_env({**base, **environment}, dotenv_path=None)
    assert settings.s3_bucket == "vid2mp3" and settings.s3_prefix.endswith("/")
    with pytest.raises(ConfigError, match="S3_BUCKET and MONGO_URI"):
        Settings.from_env(
            {**base, **environment, "MONGO_URI": "mongodb://mongo:27017/"}, dotenv_path=None
        )


def test_seaweedfs_is_pinned_persistent_checked_and_given_time_to_stop():
    service = override()["services"]["seaweedfs"]
    assert service["image"] == "chrislusf/seaweedfs:4.48"  # the version the tests run
    assert (
        "seaweedfs-data:/data" in service["volumes"] and "seaweedfs-data" in override()["volumes"]
    )
    assert "ports" not in service  # reached inside the compose network only
    assert "healthcheck" in service and service["restart"] == "unless-stopped"
    seconds = int(str(service["stop_grace_period"]).rstrip("s"))
    assert seconds >= 20
    assert service["environment"]["AWS_SECRET_ACCESS_KEY"].startswith("${SEAWEEDFS_SECRET_KEY:?")
    assert env_example()["SEAWEEDFS_SECRET_KEY"] == ""  # no working default secret
    assert "seaweedfs" not in compose()["services"]  # the base file stays as it was


# --- kubernetes ---------------------------------------------------------------------------


def build_with_component(overlay: str, tmp_path: Path) -> list[dict]:
    """An overlay of our own, as docs/operations.md shows: an overlay plus the s3 component."""
    here = tmp_path / "s3-overlay"
    here.mkdir()
    (here / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "overlays" / overlay, here)],
                "components": [os.path.relpath(COMPONENT, here)],
            }
        )
    )
    result = run([kubectl(), "kustomize", str(here)])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    validated = run(
        [
            venv_tool("kubernetes-validate"),
            "--strict",
            "--kubernetes-version",
            KUBERNETES_VERSION,
            "-",
        ],
        stdin=text,
    )
    errors = [
        line
        for line in (validated.stdout + validated.stderr).splitlines()
        if line.startswith(("ERROR", "FATAL"))
    ]
    assert validated.returncode == 0 and not errors, validated.stdout + validated.stderr
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("overlay", ["local", "production"])
def test_the_component_moves_every_process_to_the_bucket(overlay, tmp_path):
    docs = build_with_component(overlay, tmp_path)
    assert not [d for d in docs if "mongodb" in d["metadata"]["name"]]
    for where, container in image_containers(docs).items():
        secrets = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert secrets[-1] == "vid2mp3-s3", f"{where}: the S3 Secret must come last (it wins)"
        assert {"name": "MONGO_URI", "value": ""} in container["env"], where
    (config,) = [
        d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("vid2mp3-config")
    ]
    assert config["data"]["S3_PRESIGNED_DOWNLOADS"] == "true"
    assert config["data"]["S3_BUCKET"] == ""  # the bucket comes from the Secret
    (egress,) = find(docs, "NetworkPolicy", "worker-convert-egress")
    peers = [peer for rule in egress["spec"]["egress"] for peer in rule["to"]]
    assert not any("mongodb" in str(peer) for peer in peers)
    (bucket_rule,) = [rule for rule in egress["spec"]["egress"] if "ipBlock" in str(rule["to"])]
    assert bucket_rule["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert "169.254.0.0/16" in bucket_rule["to"][0]["ipBlock"]["except"]  # no metadata service


def test_the_components_secret_template_is_refused_until_filled_in():
    (secret,) = [d for d in yaml.safe_load_all(SECRET_TEMPLATE.read_text()) if d]
    data = secret["stringData"]
    assert set(data) == {
        "S3_BUCKET",
        "S3_ENDPOINT_URL",
        "S3_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    with pytest.raises(ConfigError, match="S3_BUCKET|S3_ENDPOINT_URL"):
        Settings.from_env(
            {
                "JWT_SECRET": "Zq7-vR2m_Lp9xW4kT8nB3cY6hJ1sD5fG",
                "ADMIN_PASSWORD": "Kx8-wQ3mN7pL2v",
                "ADMIN_EMAIL": "admin@example.com",
                **{k: v for k, v in data.items() if k.startswith("S3_")},
            },
            dotenv_path=None,
        )
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in str(kustomization)  # never applied by a build
