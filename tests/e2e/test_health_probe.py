"""The worker probe Kubernetes runs (`python -m workers.health QUEUE`): its exit status."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from devtools.processes import ROOT
from tests.support.config import service_env

pytestmark = pytest.mark.e2e


def probe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.health", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.stores("directory")
@pytest.mark.parametrize("queue", ["convert", "notify"])
def test_probe_passes_against_a_running_worker(stack, queue):
    result = probe(stack.env, queue)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(f"{queue}@") and result.stdout.strip().endswith(": ok")


@pytest.mark.stores("directory")
def test_probe_fails_for_a_worker_that_is_not_there(stack):
    result = probe(stack.env, "convert", "no-such-host")
    assert result.returncode == 1
    assert "convert@no-such-host: no reply" in result.stderr


def test_probe_fails_when_no_worker_listens_on_the_broker():
    nobody = service_env(CELERY_KEY_PREFIX=f"vid2mp3-probe-{uuid.uuid4().hex[:8]}:")
    result = probe(nobody, "notify")
    assert result.returncode == 1
    assert "no reply" in result.stderr


@pytest.mark.parametrize("args", [[], ["sweep"], ["Convert"]])
def test_probe_usage_error(args):
    result = probe(service_env(), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m workers.health")
