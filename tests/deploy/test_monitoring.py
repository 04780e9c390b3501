"""The operator's side of the metrics: alert rules that promtool accepts and whose unit tests
pass, a Grafana dashboard whose queries parse and name only series the code exports, and
scrape annotations that point at the ports the processes really serve."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import K8S, OVERLAYS, ROOT, app_container, built, configmap, find, one
from tests.support.wait import scaled

MONITORING = K8S / "base" / "monitoring"
RULES = MONITORING / "alerts.rules.yaml"
DASHBOARD = MONITORING / "dashboard.json"


def promtool(*args: str, cwd: Path = MONITORING) -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `apt-get install prometheus` (.ci/run installs it)")
    done = subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=scaled(120)
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def exported_metrics() -> set[str]:
    """Series names the code defines (histograms add _bucket, _sum and _count)."""
    source = (ROOT / "core" / "adapters" / "prometheus.py").read_text()
    names = set(re.findall(r'"(vid2mp3_[a-z_]+)"', source))
    return names | {f"{n}{suffix}" for n in names for suffix in ("_bucket", "_sum", "_count")}


def referenced(expr: str) -> set[str]:
    return set(re.findall(r"\bvid2mp3_[a-z_]+", expr))


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_promtool_accepts_the_alert_rules():
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", RULES.name)


def test_the_alerts_fire_on_trouble_and_stay_quiet_otherwise():
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yaml")


def test_alerts_cover_the_issue_and_name_exported_series_only():
    rules = [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    names = {rule["alert"] for rule in rules}
    assert {
        "Vid2mp3BacklogGrowing",
        "Vid2mp3ConversionFailureRate",
        "Vid2mp3NoConvertWorker",
        "Vid2mp3EmailFailures",
    } <= names
    for rule in rules:
        unknown = referenced(rule["expr"]) - exported_metrics()
        assert not unknown, f"{rule['alert']} uses series nobody exports: {unknown}"


def test_dashboard_queries_parse_and_use_exported_series(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("queue depth", "jobs per minute", "p50 / p95", "error rate", "workers"):
        assert topic in titles, topic
    exprs = dashboard_exprs()
    for expr in exprs:
        unknown = referenced(expr) - exported_metrics()
        assert not unknown, f"the dashboard queries series nobody exports: {unknown} in {expr}"
    # promtool has no PromQL checker on its own: each query becomes a recording rule.
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "dashboard.rules.yaml").write_text(yaml.safe_dump(recording))
    assert f"SUCCESS: {len(exprs)} rules found" in promtool(
        "check", "rules", "dashboard.rules.yaml", cwd=tmp_path
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rules_and_dashboard_ship_in_the_build(overlay):
    docs = built(overlay)
    alerts = one(docs, "ConfigMap", "vid2mp3-alerts")
    assert alerts["data"]["alerts.rules.yaml"] == RULES.read_text()
    dashboard = one(docs, "ConfigMap", "vid2mp3-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["vid2mp3.json"]) == json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scrape_annotations_point_at_the_served_ports(overlay):
    docs = built(overlay)
    settings = configmap(docs)
    assert settings["LOG_FORMAT"] == "json"
    assert settings["WORKER_METRICS_HOST"] == "0.0.0.0"
    expected = {
        "api": int(settings["API_PORT"]),
        "worker-convert": int(settings["WORKER_METRICS_PORT"]),
        "worker-notify": int(settings["WORKER_METRICS_PORT"]),
        "worker-webhooks": int(settings["WORKER_METRICS_PORT"]),
        "worker-fetch": int(settings["WORKER_METRICS_PORT"]),
    }
    for component, port in expected.items():
        template = one(docs, "Deployment", component)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == port > 0, component
        ports = {p["containerPort"] for p in app_container(docs, component).get("ports", [])}
        assert port in ports, f"{component} does not declare port {port}"
    scrapers = [
        policy
        for policy in find(docs, "NetworkPolicy")
        if policy["metadata"]["name"] == "worker-metrics"
    ]
    assert scrapers and scrapers[0]["spec"]["ingress"][0]["ports"] == [{"port": "metrics"}]
