"""The kustomize overlays build, validate against Kubernetes and KEDA schemas, and say what the
operations guide promises: probes, limits, hardening, scaling, disruption budgets, policies."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from tests.deploy.support import (
    APP_COMPONENTS,
    DATA_STORES,
    K8S,
    KEDA_SCHEMAS,
    KUBERNETES_VERSION,
    MIGRATE,
    MIGRATE_COMMAND,
    OVERLAYS,
    SCHEMA_USERS,
    SECRET_TEMPLATE,
    app_container,
    build_text,
    built,
    configmap,
    containers,
    find,
    image_containers,
    migrate_container,
    one,
    pod_spec,
    run,
    schema_wait,
    secret_templates,
    selects,
    venv_tool,
)

NAMESPACE = "vid2mp3"
WORKERS = {
    "worker-convert": "convert",
    "worker-notify": "notify",
    "worker-webhooks": "webhooks",
    "worker-fetch": "fetch",
}


# --- build and schemas --------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_into_one_namespace(overlay):
    docs = built(overlay)
    assert docs, f"{overlay} built nothing"
    namespaced = [d for d in docs if d["kind"] != "Namespace"]
    outside = [
        f"{d['kind']}/{d['metadata']['name']}"
        for d in namespaced
        if d["metadata"].get("namespace") != NAMESPACE
    ]
    assert not outside, f"resources outside namespace {NAMESPACE}: {outside}"
    assert one(docs, "Namespace", NAMESPACE)


def test_pinned_kubernetes_version_is_shipped_by_kubernetes_validate():
    from kubernetes_validate import utils

    assert KUBERNETES_VERSION in utils.all_versions(), (
        f"kubernetes-validate {utils.__version__} has no schemas for Kubernetes "
        f"{KUBERNETES_VERSION}; upgrade it (pip install -U kubernetes-validate)"
    )


def _kubernetes_validate(yaml_text: str, label: str) -> list[str]:
    """Validate every resource with --strict in one run; return the kinds it had no schema for."""
    result = run(
        [
            venv_tool("kubernetes-validate"),
            "--strict",
            "--kubernetes-version",
            KUBERNETES_VERSION,
            "-",
        ],
        stdin=yaml_text,
    )
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    problems = [line for line in lines if line.startswith(("ERROR", "FATAL"))]
    assert result.returncode == 0 and not problems, (
        f"{label} does not validate against Kubernetes {KUBERNETES_VERSION}:\n" + "\n".join(lines)
    )
    passed = [line for line in lines if line.startswith("INFO") and " passed " in line]
    unknown = [line for line in lines if line.startswith("WARN")]
    docs = [d for d in yaml.safe_load_all(yaml_text) if d]
    assert len(passed) + len(unknown) == len(docs), "\n".join(lines)
    return unknown


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_validates_strictly(overlay):
    unknown = _kubernetes_validate(build_text(overlay), f"k8s/overlays/{overlay}")
    # Only KEDA's custom resources lack a Kubernetes schema; test_keda_* validates those.
    assert all("keda.sh/" in line for line in unknown), "\n".join(unknown)


def test_secret_template_validates_strictly():
    assert not _kubernetes_validate(SECRET_TEMPLATE.read_text(), SECRET_TEMPLATE.name)


def _keda_schema(name: str) -> dict:
    return json.loads((KEDA_SCHEMAS / name).read_text())


def test_keda_resources_match_the_vendored_crd_schemas():
    docs = built("production")
    schemas = {
        "ScaledObject": _keda_schema("scaledobject_v1alpha1.json"),
        "TriggerAuthentication": _keda_schema("triggerauthentication_v1alpha1.json"),
    }
    keda = [d for d in docs if d["apiVersion"].startswith("keda.sh/")]
    assert {d["kind"] for d in keda} == set(schemas)
    for doc in keda:
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        errors = sorted(
            jsonschema.Draft202012Validator(schemas[doc["kind"]]).iter_errors(doc), key=str
        )
        assert not errors, f"{doc['kind']}/{doc['metadata']['name']}: " + "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors
        )


def test_vendored_keda_schema_rejects_a_broken_scaledobject():
    schema = _keda_schema("scaledobject_v1alpha1.json")
    broken = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "x"}, "minReplicas": 1, "triggers": []},
    }
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))
    assert (KEDA_SCHEMAS / "LICENSE").is_file() and "datreeio/CRDs-catalog" in (
        KEDA_SCHEMAS / "README.md"
    ).read_text()


# --- the API ------------------------------------------------------------------------------


def test_api_runs_several_replicas_with_probes_service_and_autoscaler():
    docs = built("production")
    api = one(docs, "Deployment", "api")
    assert api["spec"]["replicas"] >= 2
    container = app_container(docs, "api")
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = one(docs, "Service", "api")
    assert selects(
        {"matchLabels": service["spec"]["selector"]}, api["spec"]["template"]["metadata"]["labels"]
    )
    hpa = one(docs, "HorizontalPodAutoscaler", "api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert [h["spec"]["scaleTargetRef"]["name"] for h in find(docs, "HorizontalPodAutoscaler")] == [
        "api"
    ]


# --- every pod ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_a_memory_limit(overlay):
    docs = built(overlay)
    for workload in find(docs, "Deployment") + find(docs, "StatefulSet") + find(docs, "Job"):
        for container in containers(workload):
            resources = container.get("resources", {})
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert "memory" in resources.get("limits", {}), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(overlay):
    """The namespace enforces `restricted`; a pod that breaks it would never be admitted."""
    docs = built(overlay)
    assert (
        one(docs, "Namespace", NAMESPACE)["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        == "restricted"
    )
    for workload in find(docs, "Deployment") + find(docs, "StatefulSet") + find(docs, "Job"):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
        assert not any("hostPath" in v for v in spec.get("volumes", [])), name
        for container in containers(workload):
            ctx = container["securityContext"]
            assert not ctx.get("privileged"), name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            assert not ctx["capabilities"].get("add"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_vid2mp3_processes_have_read_only_roots_and_writable_scratch(overlay):
    docs = built(overlay)
    data_dir = configmap(docs)["DATA_DIR"]
    for component in APP_COMPONENTS:
        deployment = one(docs, "Deployment", component)
        container = app_container(docs, component)
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, component
        volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        for path in (data_dir, "/tmp"):
            assert path in mounts, f"{component}: nothing writable mounted at {path}"
            assert "emptyDir" in volumes[mounts[path]], f"{component}: {path} is not an emptyDir"
    for where, container in image_containers(docs).items():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, where


# --- the schema ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_job_migrates_once_and_the_deployments_wait_for_the_schema(overlay):
    """The Job runs the migration to its end (retried with backoff, never restarted in
    place); every Deployment that uses MySQL starts only once `--check` passes, with the
    same image, so a new build waits for its own schema."""
    docs = built(overlay)
    job = one(docs, "Job", MIGRATE)
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    assert 1 <= job["spec"]["backoffLimit"] <= 10
    assert migrate_container(docs)["args"] == MIGRATE_COMMAND
    waiting = {
        d["metadata"]["name"] for d in find(docs, "Deployment") if pod_spec(d).get("initContainers")
    }
    assert waiting == set(SCHEMA_USERS)
    for component in SCHEMA_USERS:
        init = schema_wait(docs, component)
        assert init["args"][:4] == ["python", "-m", "core.migrate", "--check"], component
        wait = int(init["args"][init["args"].index("--wait") + 1])
        assert wait >= 60, f"{component} gives the migration {wait} s"
        assert (
            init["image"]
            == app_container(docs, component)["image"]
            == migrate_container(docs)["image"]
        )
        assert init["envFrom"] == app_container(docs, component)["envFrom"], component


# --- workers ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_worker_has_its_own_deployment_probe_and_resources(overlay):
    docs = built(overlay)
    resources = {}
    for component, queue in WORKERS.items():
        container = app_container(docs, component)
        assert container["startupProbe"]["exec"]["command"] == [
            "python",
            "-m",
            "workers.health",
            queue,
        ]
        resources[component] = container["resources"]
    assert resources["worker-convert"] != resources["worker-notify"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_beat_is_a_single_replica_recreated_never_scaled(overlay):
    docs = built(overlay)
    beat = one(docs, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    targets = [
        d["spec"]["scaleTargetRef"]["name"]
        for d in find(docs, "HorizontalPodAutoscaler") + find(docs, "ScaledObject")
    ]
    assert "beat" not in targets


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_flower_has_a_service_and_basic_auth_from_a_secret(overlay):
    docs = built(overlay)
    container = app_container(docs, "flower")
    assert "FLOWER_BASIC_AUTH" not in configmap(docs)
    secret_refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
    assert any("FLOWER_BASIC_AUTH" in secret_templates()[name] for name in secret_refs)
    service = one(docs, "Service", "flower")
    assert selects(
        {"matchLabels": service["spec"]["selector"]},
        one(docs, "Deployment", "flower")["spec"]["template"]["metadata"]["labels"],
    )


# --- data stores --------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_data_stores_are_statefulsets_with_claims_and_services(overlay):
    docs = built(overlay)
    for name in DATA_STORES:
        sts = one(docs, "StatefulSet", name)
        claims = [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]]
        mounted = {m["name"] for c in containers(sts) for m in c.get("volumeMounts", [])}
        assert claims and set(claims) <= mounted, name
        service = one(docs, "Service", sts["spec"]["serviceName"])
        assert selects(
            {"matchLabels": service["spec"]["selector"]},
            sts["spec"]["template"]["metadata"]["labels"],
        ), name
    images = {name: containers(one(docs, "StatefulSet", name))[0]["image"] for name in DATA_STORES}
    assert re.fullmatch(r"mysql:8(\.\d+)*", images["mysql"])
    assert re.fullmatch(r"mongo:7(\.\d+)*", images["mongodb"])
    assert re.fullmatch(r"redis:7(\.\d+)*", images["redis"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_persists_and_never_evicts_the_broker(overlay):
    args = containers(one(built(overlay), "StatefulSet", "redis"))[0]["args"]
    pairs = dict(zip(args[1::2], args[2::2]))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--maxmemory-policy"] == "noeviction"


# --- disruption budgets and network policies ---------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_cover_api_and_workers_and_never_block_a_drain(overlay):
    docs = built(overlay)
    covered = set()
    for pdb in find(docs, "PodDisruptionBudget"):
        spec = pdb["spec"]
        matches = [
            d["metadata"]["name"]
            for d in find(docs, "Deployment")
            if selects(spec["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(matches) == 1, f"PDB {pdb['metadata']['name']} selects {matches}"
        covered.add(matches[0])
        replicas = one(docs, "Deployment", matches[0])["spec"]["replicas"]
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] not in (0, "0%"), pdb["metadata"]["name"]
        else:
            assert isinstance(spec["minAvailable"], int) and spec["minAvailable"] < replicas
    assert {"api", "worker-convert", "worker-notify"} <= covered


def _pods(docs: list[dict]) -> dict[str, dict[str, str]]:
    """Workload name -> its pod labels."""
    return {
        w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"]
        for w in find(docs, "Deployment") + find(docs, "StatefulSet") + find(docs, "Job")
    }


def _ingress_sources(docs: list[dict], labels: dict[str, str]) -> list[dict | None]:
    """Peers allowed in to pods with these labels: None means from anywhere."""
    sources: list[dict | None] = []
    for policy in find(docs, "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            sources.extend(rule["from"] if rule.get("from") else [None])
    return sources


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_isolate_the_data_stores(overlay):
    docs = built(overlay)
    default_deny = [
        p
        for p in find(docs, "NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and "Ingress" in p["spec"]["policyTypes"]
        and not p["spec"].get("ingress")
    ]
    assert default_deny, "no default-deny ingress policy"
    pods = _pods(docs)
    open_to_all = {name for name, labels in pods.items() if None in _ingress_sources(docs, labels)}
    allowed_open = {"api", "flower"} | ({"mailpit"} if overlay == "local" else set())
    assert open_to_all == allowed_open
    clients = {
        "mysql": {
            "api",
            "worker-convert",
            "worker-notify",
            "worker-webhooks",
            "worker-fetch",
            MIGRATE,
        },
        "mongodb": {"api", "worker-convert", "worker-notify", "worker-fetch"},
        # Flower is a broker client too; beat only sends tasks.
        "redis": {
            "api",
            "worker-convert",
            "worker-notify",
            "worker-webhooks",
            "worker-fetch",
            "beat",
            "flower",
        },
    }
    for store, expected in clients.items():
        sources = _ingress_sources(docs, pods[store])
        reached_by = {
            name
            for name, labels in pods.items()
            for peer in sources
            if peer
            and "podSelector" in peer
            and "namespaceSelector" not in peer
            and selects(peer["podSelector"], labels)
        }
        assert reached_by == expected, f"{store} reachable from {sorted(reached_by)}"
        other_namespaces = [
            p["namespaceSelector"] for p in sources if p and "namespaceSelector" in p
        ]
        if store == "redis" and overlay == "production":
            assert other_namespaces == [{"matchLabels": {"kubernetes.io/metadata.name": "keda"}}]
        else:
            assert not other_namespaces, store


# --- overlays -----------------------------------------------------------------------------


def test_local_overlay_runs_one_of_each_from_the_local_image_on_nodeports():
    docs = built("local")
    for workload in find(docs, "Deployment") + find(docs, "StatefulSet"):
        assert workload["spec"]["replicas"] == 1, workload["metadata"]["name"]
    assert not find(docs, "HorizontalPodAutoscaler") and not find(docs, "ScaledObject")
    for where, container in image_containers(docs).items():
        assert container["imagePullPolicy"] == "Never", where
    for name in ("api", "flower", "mailpit"):
        assert one(docs, "Service", name)["spec"]["type"] == "NodePort", name


def test_production_overlay_scales_each_worker_on_its_own_queue_with_keda():
    import celeryconfig

    docs = built("production")
    queues = {
        "worker-convert": celeryconfig.CONVERT_QUEUE,
        "worker-notify": celeryconfig.NOTIFY_QUEUE,
        "worker-webhooks": celeryconfig.WEBHOOKS_QUEUE,
        "worker-fetch": celeryconfig.FETCH_QUEUE,
    }
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in find(docs, "ScaledObject")}
    assert set(scaled) == set(queues)
    auth_names = {a["metadata"]["name"] for a in find(docs, "TriggerAuthentication")}
    for deployment, queue in queues.items():
        assert one(docs, "Deployment", deployment)
        spec = scaled[deployment]["spec"]
        assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        assert spec["minReplicaCount"] == 1 < spec["maxReplicaCount"]
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == queue
        assert trigger["authenticationRef"]["name"] in auth_names
    for auth in find(docs, "TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secret_templates()[ref["name"]]


def test_production_overlay_serves_the_api_over_tls():
    docs = built("production")
    ingress = one(docs, "Ingress", "api")
    assert ingress["spec"]["tls"]
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {str(p["backend"]["service"]) for p in paths} == {
        str({"name": "api", "port": {"name": "http"}})
    }
    assert configmap(docs)["PUBLIC_BASE_URL"].startswith("https://")


@pytest.fixture(scope="module")
def app_routes() -> list[str]:
    from api import create_app
    from tests.support.config import TEST_ENV

    app = create_app(config=TEST_ENV)  # builds no connection
    return sorted({rule.rule for rule in app.url_map.iter_rules()})


def _routed(paths: list[dict], path: str) -> bool:
    """Whether an Ingress with these paths sends `path` on (Kubernetes' Exact/Prefix rules)."""
    for entry in paths:
        rule = entry["path"]
        if entry["pathType"] == "Exact" and path == rule:
            return True
        if entry["pathType"] == "Prefix" and (
            rule == "/" or path == rule or path.startswith(rule.rstrip("/") + "/")
        ):
            return True
    return False


def test_production_ingress_routes_every_api_route_but_metrics(app_routes):
    ingress = one(built("production"), "Ingress", "api")
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    for route in app_routes:
        example = re.sub(r"<[^>]+>", "x", route)
        assert _routed(paths, example) == (route != "/metrics"), route


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builds_never_contain_a_secret(overlay):
    """Applying an overlay must not create or overwrite the real Secrets."""
    assert not find(built(overlay), "Secret")


def test_secret_template_holds_obvious_placeholders_the_app_refuses():
    from core.settings import ConfigError, Settings

    templates = secret_templates()
    assert set(templates) == {"vid2mp3-secrets", "vid2mp3-datastores"}
    for name, data in templates.items():
        for key, value in data.items():
            assert "REPLACE_ME" in value, f"{name}.{key} is not an obvious placeholder"
    for kustomization in K8S.rglob("kustomization.yaml"):
        listed = yaml.safe_load(kustomization.read_text()).get("resources", [])
        assert not any(SECRET_TEMPLATE.name in entry for entry in listed), (
            f"{kustomization.relative_to(K8S)} lists the Secret template as a resource"
        )
    environ = {**configmap(built("production")), **templates["vid2mp3-secrets"]}
    with pytest.raises(ConfigError):
        Settings.from_env(environ, dotenv_path=None)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_fetch_workers_reach_the_internet_but_no_private_range(overlay):
    """worker-fetch downloads what users name by URL: its egress policy lets it out to public
    addresses on any port, and keeps the cloud metadata service and private ranges shut,
    whatever the code's own guard decides; the convert workers stay without internet."""
    docs = built(overlay)
    policy = one(docs, "NetworkPolicy", "worker-fetch-egress")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "worker-fetch"
    )
    blocks = [
        peer["ipBlock"]
        for rule in policy["spec"]["egress"]
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    v4 = next(block for block in blocks if block["cidr"] == "0.0.0.0/0")
    for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"):
        assert private in v4["except"]
    convert = one(docs, "NetworkPolicy", "worker-convert-egress")
    assert not any(
        "ipBlock" in peer for rule in convert["spec"]["egress"] for peer in rule.get("to", [])
    )
    assert one(docs, "Deployment", "worker-fetch")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ] == ["python", "-m", "workers.fetch"]
