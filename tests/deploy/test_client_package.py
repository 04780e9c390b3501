"""The CLI's wheel carries its copy of the server's audio options (its flags are built from it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.deploy.support import ROOT
from tests.support.wait import scaled

COPY = "vid2mp3_client/upload_options.json"


def test_client_wheel_carries_the_upload_options(tmp_path):
    source = tmp_path / "client"
    shutil.copytree(
        ROOT / "client", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=scaled(300),
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("vid2mp3_client-*.whl")
    with zipfile.ZipFile(wheel) as shipped:
        assert shipped.read(COPY) == (ROOT / "client" / COPY).read_bytes()
