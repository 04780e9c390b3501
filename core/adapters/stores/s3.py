"""A BlobStore on an S3-compatible object store (AWS S3, SeaweedFS, MinIO, R2...), via boto3.

Each file is one object `<S3_PREFIX><bucket>/<fid>`, fid a random 32-hex id: no key ever
derives from a user's file name. The name, content type and metadata ride on the object
itself (one user-metadata header of base64 JSON), so a file exists exactly when its object
does. Writes stream by multipart upload, one part in memory at a time; a failed write aborts
its multipart upload. Reads stream by ranged GETs.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from core.adapters.stores.blob_writer import CountingWriter
from core.domain.errors import NotFound, Unavailable
from core.domain.files import Blob
from core.ports.files import BlobStore

log = logging.getLogger(__name__)

SERVICE = "blob store"
PART_SIZE = 5 << 20  # S3's smallest part: about 4 parts are held per upload at the peak
MAX_PARTS = 10_000  # S3's limit: parts grow past PART_SIZE for a file this would not fit
COPY_CHUNK = 1 << 20
READ_BUFFER = 1 << 20
META_KEY = "vid2mp3"  # x-amz-meta-vid2mp3: base64url of {"filename", "metadata"}
META_LIMIT = 1800  # S3 allows 2 KB of user metadata in all
_FID = re.compile(r"[0-9a-f]{32}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class S3Location:
    """Where the store's objects live and how to reach them (credentials: the AWS chain)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "path"
    timeout_seconds: float = 10.0


def s3_client_factory(location: S3Location) -> Callable[[], Any]:
    """A function building a boto3 S3 client that signs with SigV4 and gives up quickly."""

    def build() -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session()
        return session.client(
            "s3",
            endpoint_url=location.endpoint_url or None,
            region_name=location.region or None,
            config=Config(
                # boto3 signs presigned URLs for a custom endpoint the old way unless told.
                signature_version="s3v4",
                s3={"addressing_style": location.addressing_style},
                connect_timeout=location.timeout_seconds,
                read_timeout=max(location.timeout_seconds, 30.0),
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
            ),
        )

    return build


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or "")


def _is_missing(exc: BaseException) -> bool:
    return _status(exc) == 404 and _code(exc) not in ("NoSuchBucket",)


def unavailable(exc: BaseException) -> Unavailable:
    """What the callers see of a refused or unreachable S3: 503, with the cause in words that
    name no host, key or credential."""
    status, code = _status(exc), _code(exc)
    if code == "NoSuchBucket" or (status == 404 and not code.startswith("NoSuchKey")):
        cause = "the S3 bucket does not exist"
    elif status in (401, 403) or code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        cause = "S3 refused the credentials"
    elif status >= 500:
        cause = f"S3 answered {status}"
    elif exc.__class__.__name__ == "NoCredentialsError":
        cause = "no S3 credentials found"
    else:
        cause = "S3 cannot be reached"
    return Unavailable(SERVICE, f"blob store is unavailable: {cause}", cause=cause)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn any botocore or transport failure into Unavailable (NotFound stays NotFound)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError, OSError) as exc:
        raise unavailable(exc) from exc
    except Exception as exc:
        # urllib3's errors while a body streams (ProtocolError, ReadTimeoutError) are not
        # BotoCoreErrors; anything else from the transport is an outage too.
        if type(exc).__module__.split(".")[0] in ("urllib3", "botocore", "http"):
            raise unavailable(exc) from exc
        raise


def encode_record(filename: str | None, metadata: dict[str, Any]) -> str:
    """The object's user metadata: base64url JSON, the name shortened if it would not fit."""
    json.dumps(metadata)  # fail before streaming anything when metadata cannot be stored
    name = filename
    while True:
        record = json.dumps({"filename": name, "metadata": metadata}, ensure_ascii=False)
        text = base64.urlsafe_b64encode(record.encode()).decode("ascii")
        if len(text) <= META_LIMIT:
            return text
        if not name:
            raise ValueError("blob metadata does not fit in an S3 object's metadata")
        name = name[: len(name) * 3 // 4]


def decode_record(text: str | None) -> tuple[str | None, dict[str, Any]]:
    if not text:
        return None, {}
    try:
        record = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
        return record.get("filename"), dict(record.get("metadata") or {})
    except (ValueError, TypeError, AttributeError):
        return None, {}


class MultipartSink:
    """Bytes streamed into one object: a single PUT when they fit one part, else a multipart
    upload fed part by part. Nothing is visible until close(); abort() leaves nothing.

    One part is sent in the background while the next one fills, so receiving and sending
    overlap (the upload runs at the slower of the two, not their sum); at most two parts are
    ever held, and a failed part surfaces at the next write, close or abort."""

    def __init__(
        self,
        client: Callable[[], Any],
        bucket: str,
        key: str,
        extra: dict[str, Any],
        part_size: int = PART_SIZE,
        on_abort_failed: Callable[[str, str], None] | None = None,
    ):
        self._on_abort_failed = on_abort_failed
        self._client = client
        self._bucket = bucket
        self._key = key
        self._extra = extra
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future[dict[str, Any]] | None = None

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            with memoryview(self._buffer) as view:
                piece = bytes(view[: self._part_size])
            del self._buffer[: self._part_size]
            self._send(piece)
            if len(self._parts) * 2 >= MAX_PARTS:  # a huge file: larger parts from now on
                self._part_size *= 2

    def close(self) -> None:
        """Publish the object."""
        try:
            with translate_errors():
                if self._upload_id is None:
                    self._client().put_object(
                        Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer), **self._extra
                    )
                else:
                    if self._buffer or not (self._parts or self._in_flight):
                        self._send(bytes(self._buffer))
                    self._settle()
                    self._client().complete_multipart_upload(
                        Bucket=self._bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
        finally:
            self._buffer = bytearray()
            self._stop_sender()

    def abort(self) -> None:
        """Drop the unfinished upload; a failure here is logged, never raised over the cause."""
        self._buffer = bytearray()
        with suppress(Exception):
            self._settle()  # the part in flight ends (or fails) before the upload goes
        self._stop_sender()
        if self._upload_id is None:
            return
        try:
            self._client().abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
        except Exception as exc:  # noqa: BLE001  the caller's error matters more
            log.warning("could not abort multipart upload %s now: %s", self._upload_id, exc)
            if self._on_abort_failed is not None:
                self._on_abort_failed(self._key, self._upload_id)

    def _send(self, piece: bytes) -> None:
        """Start sending a part once the one before it has gone."""
        self._settle()
        with translate_errors():
            if self._upload_id is None:
                created = self._client().create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, **self._extra
                )
                self._upload_id = created["UploadId"]
        if self._sender is None:
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="s3-part")
        number = len(self._parts) + 1
        self._in_flight = self._sender.submit(self._upload_part, number, piece)

    def _settle(self) -> None:
        """Wait for the part in flight; its failure is raised here."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            self._parts.append(in_flight.result())

    def _upload_part(self, number: int, piece: bytes) -> dict[str, Any]:
        with translate_errors():
            answer = self._client().upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=piece,
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _stop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.shutdown(wait=True)


class S3Reader(io.RawIOBase):
    """A seekable reader over one object: a ranged GET from the position, reopened on seek."""

    def __init__(self, client: Callable[[], Any], bucket: str, key: str, length: int):
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self.length = length
        self._pos = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._check_closed()
        view = memoryview(buffer).cast("B")
        if self._pos >= self.length or not len(view):
            return 0
        with translate_errors():
            if self._body is None:
                answer = self._client().get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-"
                )
                self._body = answer["Body"]
            data = self._body.read(len(view))
        if not data:
            raise Unavailable(SERVICE, "blob store is unavailable: the S3 object ended early")
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_closed()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        target = base + offset
        if target < 0:
            raise ValueError("negative seek position")
        if target != self._pos:
            self._drop_body()
            self._pos = target
        return self._pos

    def tell(self) -> int:
        self._check_closed()
        return self._pos

    def close(self) -> None:
        if not self.closed:
            self._drop_body()
        super().close()

    def _check_closed(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _drop_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with suppress(Exception):
                body.close()


class S3BlobStore(BlobStore):
    """Files as objects of one S3 bucket; the client is made lazily, once per process."""

    def __init__(self, client_factory: Callable[[], Any], location: S3Location):
        self._client_factory = client_factory
        self.location = location
        self._client: Any = None
        self._client_pid: int | None = None
        self._lock = threading.Lock()
        self.part_size = PART_SIZE
        # Multipart uploads whose abort failed (S3 was down): aborted again at the next write,
        # so a retried conversion leaves none behind; a lifecycle rule catches the rest.
        self._unaborted: list[tuple[str, str]] = []

    @property
    def s3_bucket(self) -> str:
        return self.location.bucket

    def key(self, bucket: str, fid: str) -> str:
        """The object key of a file: the prefix, the store's bucket, the random id."""
        return f"{self.location.prefix}{bucket}/{fid}"

    @contextmanager
    def writer(
        self, bucket: str, filename: str, content_type: str, metadata: dict[str, Any] | None = None
    ) -> Iterator[CountingWriter]:
        """Stream a new object in by multipart upload; on an exception the upload is aborted."""
        self._check_bucket(bucket)
        fid = uuid.uuid4().hex
        extra = {
            "ContentType": content_type or "application/octet-stream",
            "Metadata": {META_KEY: encode_record(filename, dict(metadata or {}))},
        }
        sink = self.sink(self.key(bucket, fid), extra)
        blob_writer = CountingWriter(fid, sink.write)
        try:
            yield blob_writer
            sink.close()
        except BaseException:
            sink.abort()
            raise

    def sink(self, key: str, extra: dict[str, Any] | None = None) -> MultipartSink:
        self.abort_leftovers()
        return MultipartSink(
            self.client,
            self.location.bucket,
            key,
            extra or {},
            part_size=self.part_size,
            on_abort_failed=self._remember,
        )

    def abort_leftovers(self) -> None:
        """Abort the multipart uploads whose abort failed earlier in this process."""
        with self._lock:
            leftovers, self._unaborted = self._unaborted, []
        for number, (key, upload_id) in enumerate(leftovers):
            try:
                self.client().abort_multipart_upload(
                    Bucket=self.location.bucket, Key=key, UploadId=upload_id
                )
            except Exception as exc:  # noqa: BLE001  still down: keep them for the next time
                if _status(exc) == 404 or _code(exc) == "NoSuchUpload":
                    continue
                with self._lock:
                    self._unaborted.extend(leftovers[number:])
                return

    def _remember(self, key: str, upload_id: str) -> None:
        with self._lock:
            if len(self._unaborted) < 1000:  # bounded: the lifecycle rule takes the rest
                self._unaborted.append((key, upload_id))

    def stat(self, bucket: str, fid: str) -> Blob | None:
        """The object's size and metadata (one HEAD), or None when there is no such file."""
        head = self._head(bucket, fid)
        if head is None:
            return None
        filename, extra = decode_record((head.get("Metadata") or {}).get(META_KEY))
        return Blob(
            fid=fid,
            size=int(head.get("ContentLength") or 0),
            content_type=head.get("ContentType") or "application/octet-stream",
            filename=filename,
            metadata=extra,
        )

    def open(self, bucket: str, fid: str) -> io.BufferedReader:
        """A seekable buffered reader; raises NotFound for an unknown id."""
        head = self._head(bucket, fid)
        if head is None:
            raise NotFound("file not found", {"bucket": bucket})
        raw = S3Reader(
            self.client, self.location.bucket, self.key(bucket, fid), int(head["ContentLength"])
        )
        return io.BufferedReader(raw, READ_BUFFER)

    @contextmanager
    def local_path(self, bucket: str, fid: str, scratch_dir: str) -> Iterator[str]:
        """A copy of the object in scratch_dir, removed when the block ends however it ends."""
        path: str | None = None
        try:
            with self.open(bucket, fid) as source:
                # No user-chosen extension: a name must never steer ffmpeg's choice of demuxer.
                with tempfile.NamedTemporaryFile(
                    dir=scratch_dir, prefix="blob-", delete=False
                ) as target:
                    path = target.name
                    shutil.copyfileobj(source, target, COPY_CHUNK)
            yield path
        finally:
            if path is not None:
                with suppress(FileNotFoundError):
                    os.unlink(path)

    def delete(self, bucket: str, fid: str) -> bool:
        """Remove the object; returns whether it existed."""
        if self._head(bucket, fid) is None:
            return False
        with translate_errors():
            self.client().delete_object(Bucket=self.location.bucket, Key=self.key(bucket, fid))
        return True

    def download_url(
        self,
        bucket: str,
        fid: str,
        seconds: int,
        content_disposition: str,
        content_type: str = "audio/mpeg",
    ) -> str:
        """A SigV4 GET URL for the object, valid for seconds, that answers with the given
        Content-Disposition and Content-Type (signing is local: no request is made)."""
        self._check_bucket(bucket)
        with translate_errors():
            return str(
                self.client().generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": self.location.bucket,
                        "Key": self.key(bucket, fid),
                        "ResponseContentDisposition": content_disposition,
                        "ResponseContentType": content_type,
                    },
                    ExpiresIn=seconds,
                )
            )

    def ping(self) -> None:
        """Raise Unavailable, naming the cause, unless the bucket answers a signed HEAD."""
        with translate_errors():
            self.client().head_bucket(Bucket=self.location.bucket)

    def close(self) -> None:
        """Forget this process's client; the next use makes a new one."""
        with self._lock:
            client, self._client, self._client_pid = self._client, None, None
        if client is not None:
            with suppress(Exception):
                client.close()

    # --- helpers -----------------------------------------------------------------------------

    def client(self) -> Any:
        """This process's client: one made before a fork is never reused after it."""
        pid = os.getpid()
        client = self._client
        if client is None or self._client_pid != pid:
            with self._lock:
                if self._client is None or self._client_pid != pid:
                    self._client = self._client_factory()
                    self._client_pid = pid
                client = self._client
        return client

    def _head(self, bucket: str, fid: str) -> dict[str, Any] | None:
        self._check_bucket(bucket)
        if not isinstance(fid, str) or not _FID.fullmatch(fid):
            return None
        from botocore.exceptions import ClientError

        with translate_errors():
            try:
                return dict(
                    self.client().head_object(
                        Bucket=self.location.bucket, Key=self.key(bucket, fid)
                    )
                )
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise

    @staticmethod
    def _check_bucket(bucket: str) -> None:
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise ValueError(f"invalid bucket name: {bucket!r}")
