"""Metrics, request ids and JSON logs over the real processes: gunicorn with 2 workers, a convert
and a notify worker each serving its own metrics port, LOG_FORMAT=json everywhere."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from celeryconfig import CONVERT_QUEUE
from core.bootstrap import Container
from core.settings import Settings
from devtools.processes import ROOT
from tests.support.client import login
from tests.support.config import service_env
from tests.support.stack import free_port, running_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

TOKEN = "metrics-test-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def obs_stack(tmp_path_factory, smtp):
    _, smtp_port = smtp
    ports = {"worker-convert": free_port(), "worker-notify": free_port()}
    extra = {
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": TOKEN,
    }
    with running_stack(
        tmp_path_factory.mktemp("stack-obs"),
        extra,
        process_env={name: {"WORKER_METRICS_PORT": port} for name, port in ports.items()},
    ) as stack:
        stack.metrics_ports = ports
        yield stack


@pytest.fixture(scope="module")
def obs_user(obs_stack):
    settings = obs_stack.settings
    admin = login(obs_stack, settings.admin_email, settings.admin_password)
    email = f"obs-{uuid.uuid4().hex[:8]}@example.com"
    created = admin.post(
        "/users", json={"name": email.split("@")[0], "email": email, "password": "password-1"}
    )
    assert created.status_code == 201, created.text
    return login(obs_stack, email, "password-1")


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def scrape(stack) -> dict:
    response = requests.get(
        stack.url("/metrics"),
        timeout=10,
        headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(response.text)


def scrape_worker(stack, name: str) -> dict:
    response = requests.get(f"http://127.0.0.1:{stack.metrics_ports[name]}/metrics", timeout=10)
    assert response.status_code == 200
    return samples(response.text)


def upload(client, path, headers=None):
    with open(path, "rb") as fh:
        return client.post(
            "/upload", files={"file": (os.path.basename(path), fh)}, headers=headers or {}
        )


def wait_done(client, job_id, timeout=90):
    def finished():
        job = client.get(f"/jobs/{job_id}").json()
        return job if job["status"] in ("done", "failed") else None

    return wait_for(finished, timeout=timeout, what=f"job {job_id} to finish")


def json_lines(text: str) -> list[dict]:
    """The JSON objects of a log; every line of it must be one."""
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
    return parsed


def test_request_id_travels_from_the_upload_into_both_workers_logs(obs_stack, obs_user, clip):
    request_id = f"obs-{uuid.uuid4().hex}"
    accepted = upload(obs_user, clip, headers={"X-Request-ID": request_id})
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["X-Request-ID"] == request_id
    job_id = accepted.json()["job_id"]
    job = wait_done(obs_user, job_id)
    assert job["status"] == "done" and job["request_id"] == request_id

    def lines_of(name):
        return [
            entry for entry in json_lines(obs_stack.log(name)) if entry["request_id"] == request_id
        ]

    convert = wait_for(
        lambda: lines_of("worker-convert"),
        timeout=30,
        what="the convert worker's lines with the request id",
    )
    assert {entry["job_id"] for entry in convert} == {job_id}
    assert any(
        e["task"] == "convert.video_to_mp3" and "succeeded" in e["message"] for e in convert
    ), convert
    notify = wait_for(
        lambda: [e for e in lines_of("worker-notify") if "email sent" in e["message"]],
        timeout=30,
        what="the email's log line",
    )
    assert notify[0]["job_id"] == job_id and notify[0]["task"] == "notify.job_done"
    api = wait_for(lambda: lines_of("api"), timeout=10, what="the API's access line")
    assert any("POST /upload" in entry["message"] for entry in api), api
    for entry in convert + notify + api:
        assert set(entry) >= {
            "timestamp",
            "level",
            "logger",
            "message",
            "request_id",
            "job_id",
            "task",
        }


def test_every_response_carries_a_sane_request_id(obs_stack, obs_user):
    mine = obs_user.get("/jobs", headers={"X-Request-ID": "client.id_1-2"})
    assert mine.headers["X-Request-ID"] == "client.id_1-2"
    for bad in ("has spaces", "x" * 129, "semi;colon"):
        response = obs_user.get("/jobs", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), bad
    missing = requests.get(obs_stack.url("/no/such/path"), timeout=10)
    assert missing.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["X-Request-ID"])
    first = requests.get(obs_stack.url("/healthz"), timeout=10).headers["X-Request-ID"]
    assert first != requests.get(obs_stack.url("/healthz"), timeout=10).headers["X-Request-ID"]


def test_metrics_need_the_token(obs_stack):
    anonymous = requests.get(obs_stack.url("/metrics"), timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    wrong = requests.get(
        obs_stack.url("/metrics"), headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401


def test_metrics_add_up_every_gunicorn_worker(obs_stack):
    route = f"/jobs/{uuid.uuid4().hex}"  # a job that does not exist: 401 without a token
    sent = 40
    for _ in range(sent):  # a new connection each: both workers take some
        assert (
            requests.get(
                obs_stack.url(route), timeout=10, headers={"Connection": "close"}
            ).status_code
            == 401
        )
    counted = set()
    for _ in range(6):  # whichever worker answers the scrape sees the same total
        found = scrape(obs_stack)
        counted.add(
            value(
                found,
                "vid2mp3_http_requests_total",
                method="GET",
                route="/jobs/<job_id>",
                status="401",
            )
        )
        assert (
            value(
                found,
                "vid2mp3_http_request_duration_seconds_count",
                method="GET",
                route="/jobs/<job_id>",
            )
            is not None
        )
    assert counted == {float(sent)}, counted
    assert not any(
        name == "vid2mp3_http_requests_total" and dict(labels)["route"] == route
        for name, labels in found
    ), "raw paths must not become labels"
    metric_files = os.listdir(
        os.path.join(obs_stack.env["DATA_DIR"], "metrics", f"api-{obs_stack.settings.api_port}")
    )
    pids = {re.sub(r"\D", "", name) for name in metric_files if name.startswith("counter_")}
    assert len(pids) >= 2, metric_files


def test_service_metrics_after_a_conversion(obs_stack, obs_user, clip):
    before = scrape(obs_stack)
    job = wait_done(obs_user, upload(obs_user, clip).json()["job_id"])
    assert job["status"] == "done"
    after = scrape(obs_stack)
    uploaded = value(after, "vid2mp3_upload_bytes_total") - (
        value(before, "vid2mp3_upload_bytes_total") or 0
    )
    assert uploaded == os.path.getsize(clip) == job["video_size"]
    for queue in ("convert", "notify"):
        assert value(after, "vid2mp3_queue_length", queue=queue) == 0
    assert value(after, "vid2mp3_broker_up") == 1

    convert = scrape_worker(obs_stack, "worker-convert")
    assert value(convert, "vid2mp3_jobs_total", outcome="succeeded") >= 1
    assert value(convert, "vid2mp3_jobs_total", outcome="failed") == 0
    assert value(convert, "vid2mp3_conversion_seconds_count") >= 1
    assert value(convert, "vid2mp3_conversion_seconds_sum") > 0
    assert [labels for name, labels in convert if name == "vid2mp3_worker_up"] == [
        (("queue", "convert"), ("worker", f"convert@{os.uname().nodename}"))
    ]
    notify = wait_for(
        lambda: (lambda m: m if value(m, "vid2mp3_emails_total", outcome="sent") else None)(
            scrape_worker(obs_stack, "worker-notify")
        ),
        timeout=30,
        what="the notify worker to count the email",
    )
    assert (
        value(notify, "vid2mp3_worker_up", queue="notify", worker=f"notify@{os.uname().nodename}")
        == 1
    )


def test_queue_length_counts_waiting_conversions(obs_stack, obs_user, clip):
    control = obs_stack.container.celery.control
    node = f"convert@{os.uname().nodename}"
    control.cancel_consumer(CONVERT_QUEUE, destination=[node], reply=True, timeout=5)
    try:
        job_ids = [upload(obs_user, clip).json()["job_id"] for _ in range(2)]
        wait_for(
            lambda: value(scrape(obs_stack), "vid2mp3_queue_length", queue="convert") == 2,
            timeout=20,
            what="two conversions waiting",
        )
    finally:
        control.add_consumer(CONVERT_QUEUE, destination=[node], reply=True, timeout=5)
    for job_id in job_ids:
        assert wait_done(obs_user, job_id)["status"] == "done"
    wait_for(
        lambda: value(scrape(obs_stack), "vid2mp3_queue_length", queue="convert") == 0,
        timeout=20,
        what="the convert queue to drain",
    )


PATCH_OUT_THE_START_UP_CHECK = (
    "import core.observability as o; o.check_metrics_port = lambda *a: None; "
    "import runpy; runpy.run_module('workers.notify', run_name='__main__')"
)


@pytest.mark.parametrize("taken", ["at start-up", "when ready"])
def test_a_worker_whose_metrics_port_is_taken_stops_with_one_line(tmp_path, taken):
    """Another process listens on the worker's metrics port: the worker says so in one line and
    stops (exit 1), rather than carry on while its URL serves someone else's numbers. "when
    ready": the port was taken after the start-up check (a race), seen as the server starts."""
    run = uuid.uuid4().hex[:8]
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = service_env(
            MYSQL_DATABASE=f"vid2mp3_wm_{run}",
            REDIS_PREFIX=f"vid2mp3-wm-{run}:",
            CELERY_KEY_PREFIX=f"vid2mp3-wm-{run}:",
            DATA_DIR=tmp_path / "data",
            WORKER_METRICS_PORT=port,
            LOG_LEVEL="INFO",
            SMTP_URL="",
        )
        # the schema first, as compose's `migrate` service does: a worker checks it at start
        subprocess.run(
            [sys.executable, "-m", "core.migrate"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=120,
        )
        argv = (
            [sys.executable, "-m", "workers.notify"]
            if taken == "at start-up"
            else [sys.executable, "-c", PATCH_OUT_THE_START_UP_CHECK]
        )
        worker = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:  # it carried on: stop it and its pool
                os.killpg(worker.pid, signal.SIGKILL)
                worker.communicate()
            from tests.support.config import cleanup

            cleanup(Container(Settings.from_env(env, dotenv_path=None)))
    said = (
        f"configuration error: WORKER_METRICS_PORT={port}: 127.0.0.1:{port} is in use by another "
        "process; set WORKER_METRICS_PORT to a free port, or 0 to serve no worker metrics"
    )
    assert worker.returncode == 1, output
    assert "Traceback" not in output and "Address already in use" not in output, output
    lines = [line for line in output.splitlines() if said in line]
    assert len(lines) == 1, output
    if taken == "at start-up":  # before anything else: no database, no broker, no Celery
        assert output.strip() == said
    else:
        assert "celery.worker.consumer.connection: Connected to" in output  # it got that far
