"""What only the S3 store has: object keys under S3_PREFIX chosen by the store alone, multipart
uploads that never outlive a failure, refusals named, and presigned GETs, against SeaweedFS."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any

import pytest

from core.adapters.stores.s3 import PART_SIZE, S3BlobStore, S3Location
from core.adapters.stores.s3_partial import S3PartialUploads
from core.domain.errors import Unavailable
from devtools.processes import free_port
from tests.support.s3 import S3Server

MiB = 1 << 20
VIDEOS = "videos"


class Boom(Exception):
    pass


def store_for(
    server: S3Server, bucket: str, prefix: str = "deploy-a/", **client: Any
) -> S3BlobStore:
    location = S3Location(
        bucket=bucket, prefix=prefix, endpoint_url=server.endpoint_url, region=server.region
    )
    return S3BlobStore(lambda: server.client(**client), location)


def everything(server: S3Server, bucket: str) -> tuple[list[str], list[str]]:
    """Every key in the bucket, and every unfinished multipart upload's key."""
    s3 = server.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    pending = [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return sorted(keys), sorted(pending)


def test_keys_start_with_the_prefix_and_ignore_the_filename(s3_server, s3_bucket):
    store = store_for(s3_server, s3_bucket)
    hostile = ["../../x", "/etc/passwd", "é" * 700 + "🎵" * 300, "a/../../b.mp4", "%2e%2e%2f"]
    fids = []
    for name in hostile:
        with store.writer(VIDEOS, name, "video/mp4", {"owner_id": 1}) as writer:
            writer.write(b"data")
        fids.append(writer.fid)
    keys, pending = everything(s3_server, s3_bucket)
    assert keys == sorted(f"deploy-a/videos/{fid}" for fid in fids) and pending == []
    assert store.stat(VIDEOS, fids[0]).filename == "../../x"  # kept as data, not as a path
    long_name = store.stat(VIDEOS, fids[2]).filename
    assert long_name and hostile[2].startswith(long_name)  # shortened to fit S3's 2 KB


def test_two_deployments_share_a_bucket_without_seeing_each_other(s3_server, s3_bucket):
    first, second = store_for(s3_server, s3_bucket, "a/"), store_for(s3_server, s3_bucket, "b/")
    with first.writer(VIDEOS, "x.mp4", "video/mp4") as writer:
        writer.write(b"first's")
    assert second.stat(VIDEOS, writer.fid) is None
    assert second.delete(VIDEOS, writer.fid) is False
    assert first.stat(VIDEOS, writer.fid).size == 7


def test_a_failed_multipart_write_is_aborted(s3_server, s3_bucket):
    store = store_for(s3_server, s3_bucket)
    with pytest.raises(Boom):
        with store.writer(VIDEOS, "big.mp4", "video/mp4") as writer:
            for _ in range(3):  # past one part: a multipart upload is under way
                writer.write(os.urandom(PART_SIZE // 2 + 1))
            assert everything(s3_server, s3_bucket)[1] != []
            raise Boom()
    assert everything(s3_server, s3_bucket) == ([], [])


def test_a_multipart_write_streams_and_reads_back(s3_server, s3_bucket):
    store = store_for(s3_server, s3_bucket)
    data = os.urandom(2 * PART_SIZE + 12345)
    with store.writer(VIDEOS, "big.mp4", "video/mp4") as writer:
        for start in range(0, len(data), MiB):
            writer.write(data[start : start + MiB])
    with store.open(VIDEOS, writer.fid) as reader:
        reader.seek(PART_SIZE - 3)
        assert reader.read(6) == data[PART_SIZE - 3 : PART_SIZE + 3]
        reader.seek(0)
        assert reader.read() == data
    assert everything(s3_server, s3_bucket)[1] == []


def test_refusals_are_unavailable_with_their_cause(s3_server, s3_bucket):
    wrong_secret = store_for(s3_server, s3_bucket, secret_key="not-the-secret")
    missing_bucket = store_for(s3_server, s3_bucket + "-missing")
    nobody_there = store_for(
        s3_server, s3_bucket, endpoint_url=f"http://127.0.0.1:{free_port()}", connect_timeout=1
    )
    for store, cause in (
        (wrong_secret, "S3 refused the credentials"),
        (missing_bucket, "the S3 bucket does not exist"),
        (nobody_there, "S3 cannot be reached"),
    ):
        with pytest.raises(Unavailable) as caught:
            store.ping()
        assert caught.value.service == "blob store" and caught.value.cause == cause
        with pytest.raises(Unavailable):
            with store.writer(VIDEOS, "a.mp4", "video/mp4") as writer:
                writer.write(b"x")
    assert s3_server.credentials.secret_key not in str(caught.value)


def test_finishing_large_segments_copies_server_side(s3_server, s3_bucket):
    store = store_for(s3_server, s3_bucket)
    partials = S3PartialUploads(store)
    handle = partials.create(VIDEOS)
    data = os.urandom(6 * MiB + 6 * MiB + 777)
    offset = 0
    for size in (6 * MiB, 6 * MiB, 777):
        with partials.appender(handle, offset) as sink:
            sink.write(data[offset : offset + size])
        offset += size
    blob = partials.finish(handle, "v.mp4", "video/mp4", {"owner_id": 2})
    with store.open(VIDEOS, blob.fid) as reader:
        assert reader.read() == data
    keys, pending = everything(s3_server, s3_bucket)
    assert keys == [store.key(VIDEOS, blob.fid)] and pending == []


def test_a_presigned_get_serves_the_bytes_with_our_headers_and_expires(s3_server, s3_bucket):
    store = store_for(s3_server, s3_bucket)
    with store.writer("mp3s", "song.mp3", "audio/mpeg") as writer:
        writer.write(b"ID3" + bytes(range(256)) * 10)
    url = store.download_url("mp3s", writer.fid, 60, 'attachment; filename="a b.mp3"')
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    request = urllib.request.Request(url, headers={"Range": "bytes=3-9"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 206
        assert answer.headers["Content-Type"] == "audio/mpeg"
        assert answer.headers["Content-Disposition"] == 'attachment; filename="a b.mp3"'
        assert answer.read() == bytes(range(7))
    tampered = url.replace("mp3s/", "videos/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403


@pytest.mark.parametrize(
    "change,state",
    [
        ({}, "ok"),
        ({"secret": "wrong-secret"}, "unavailable: S3 refused the credentials"),
        ({"bucket": "-gone"}, "unavailable: the S3 bucket does not exist"),
    ],
)
def test_readyz_names_why_the_bucket_cannot_be_used(
    container, s3_server, s3_bucket, monkeypatch, change, state
):
    from api import create_app
    from core.bootstrap import Container

    env = s3_server.env(s3_bucket + change.get("bucket", ""), prefix="ready/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", change.get("secret", env["AWS_SECRET_ACCESS_KEY"]))
    settings = container.settings.with_overrides(
        s3_bucket=env["S3_BUCKET"],
        s3_endpoint_url=env["S3_ENDPOINT_URL"],
        s3_region=env["S3_REGION"],
        s3_prefix=env["S3_PREFIX"],
    )
    client = create_app(container=Container(settings, passwords=container.passwords)).test_client()
    answer = client.get("/readyz")
    assert answer.get_json()["checks"]["blob_store"] == state
    if state == "ok":
        assert answer.status_code == 200
    else:
        assert answer.status_code == 503
        cause = state.split(": ", 1)[1]
        assert answer.get_json()["status"] == f"unavailable: blob_store ({cause})"
        assert s3_server.endpoint_url not in answer.get_data(as_text=True)
