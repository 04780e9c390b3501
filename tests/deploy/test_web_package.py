"""The web page's and /docs' assets ship in the wheel that the Docker image installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.deploy.support import ROOT
from tests.support.wait import scaled

# What the Dockerfile's builder stage copies before `pip install .`.
BUILD_INPUTS = ("pyproject.toml", "celeryconfig.py", "api", "core", "tasks", "workers")


def test_wheel_carries_the_page_and_docs_assets(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(300),
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("vid2mp3-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "api" / "web" / "static").iterdir() if p.is_file()}
    assert {"index.html", "app.js", "style.css", "docs.html", "docs.js"} <= shipped
    missing = {name for name in shipped if f"api/web/static/{name}" not in names}
    assert not missing, f"not in the wheel: {sorted(missing)}"
