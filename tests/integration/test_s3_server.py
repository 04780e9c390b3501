"""The S3 server of the tests is a real one: it checks SigV4 signatures against its identities."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support.s3 import S3Server


def test_the_right_secret_writes_and_reads(s3_server: S3Server, s3_bucket: str):
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="hello", Body=b"hi there")
    assert client.get_object(Bucket=s3_bucket, Key="hello")["Body"].read() == b"hi there"


def test_a_wrong_secret_gets_403(s3_server: S3Server, s3_bucket: str):
    forger = s3_server.client(secret_key="not-" + s3_server.credentials.secret_key)
    for call in (
        lambda: forger.head_bucket(Bucket=s3_bucket),
        lambda: forger.put_object(Bucket=s3_bucket, Key="forged", Body=b"x"),
        lambda: forger.list_objects_v2(Bucket=s3_bucket),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0


def test_each_test_gets_a_bucket_of_its_own(s3_server: S3Server, s3_bucket: str):
    other = s3_server.new_bucket()
    try:
        assert other != s3_bucket
        names = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
        assert {s3_bucket, other} <= names
    finally:
        s3_server.drop_bucket(other)
    names = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert other not in names
