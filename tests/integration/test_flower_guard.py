"""Flower is never open: without FLOWER_BASIC_AUTH it refuses to start."""

import subprocess
import sys

from tests.support.config import service_env
from tests.support.wait import scaled


def test_flower_refuses_to_start_without_basic_auth():
    env = service_env(FLOWER_BASIC_AUTH="")
    result = subprocess.run(
        [sys.executable, "-m", "workers.flower"],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr
