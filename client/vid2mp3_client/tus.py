"""Resumable uploads over tus 1.0.0 (`/uploads/`): the file in chunks, so a dropped connection
costs one chunk, not the whole file. The creation carries an Idempotency-Key, so a creation
retried after a lost answer resumes the same upload."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from vid2mp3_client.errors import ApiError, Cancelled, ClientError

if TYPE_CHECKING:
    from vid2mp3_client.api import Api, Progress

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"
PIECE = 256 * 1024
# Waits after a failure before trying again; together longer than the server's 60 s lock on
# an upload whose PATCH was cut off.
RETRY_DELAYS_S = (1, 3, 5, 10, 20, 30, 30)


def _retryable(exc: Exception) -> bool:
    """The network, a conflict on the offset or the lock (HEAD resynchronises), or a server
    briefly unavailable."""
    if isinstance(exc, ApiError):
        return exc.status == 409 or exc.status >= 502
    return isinstance(exc, ClientError)  # no answer, a timeout, a connection cut


def _metadata(path: Path, fields: dict[str, str]) -> str:
    pairs = [("filename", path.name), *fields.items()]
    return ",".join(f"{name} {base64.b64encode(value.encode()).decode()}" for name, value in pairs)


def _pieces(
    raw: BinaryIO, start: int, length: int, on_progress: Progress, stop: threading.Event
) -> Iterator[bytes]:
    raw.seek(start)
    left = length
    while left > 0:
        if stop.is_set():
            raise Cancelled()
        data = raw.read(min(PIECE, left))
        if not data:
            raise ClientError("the file got shorter while it was being uploaded")
        left -= len(data)
        yield data
        on_progress(start + length - left)


class Resumable:
    def __init__(self, api: Api, chunk_bytes: int):
        self.api = api
        self.chunk_bytes = chunk_bytes

    def upload(
        self,
        path: Path,
        fields: dict[str, str],
        on_progress: Progress,
        stop: threading.Event,
    ) -> dict[str, Any]:
        """Upload path; the accepted job as POST /upload would answer it."""
        size = path.stat().st_size
        creation = {
            **TUS,
            "Upload-Length": str(size),
            "Upload-Metadata": _metadata(path, fields),
            "Idempotency-Key": uuid.uuid4().hex,
        }
        failures = 0
        while True:
            try:
                created = self._expect(self.api.request("POST", "/uploads/", headers=creation), 201)
                break
            except (ApiError, ClientError) as exc:
                failures = self._again(exc, failures, stop)
        location = urlsplit(created.headers["Location"]).path
        offset = int(created.headers.get("Upload-Offset") or 0)
        done = created if created.headers.get("Vid2mp3-Job-Id") else None
        resync = False
        with open(path, "rb") as raw:
            while done is None:
                try:
                    if resync:  # after a failure: ask how much the server kept
                        head = self._expect(self.api.request("HEAD", location, headers=TUS), 200)
                        offset = int(head.headers["Upload-Offset"])
                        resync = False
                        if head.headers.get("Vid2mp3-Job-Id"):
                            done = head
                            break
                    length = min(self.chunk_bytes, size - offset)
                    response = self._expect(
                        self.api.request(
                            "PATCH",
                            location,
                            headers={
                                **TUS,
                                "Upload-Offset": str(offset),
                                "Content-Type": OFFSET_TYPE,
                                "Content-Length": str(length),
                            },
                            content=_pieces(raw, offset, length, on_progress, stop),
                        ),
                        204,
                    )
                    offset = int(response.headers["Upload-Offset"])
                    failures = 0
                    if response.headers.get("Vid2mp3-Job-Id"):
                        done = response
                except (ApiError, ClientError) as exc:
                    failures = self._again(exc, failures, stop)
                    resync = True
        on_progress(size)
        return {
            "job_id": done.headers["Vid2mp3-Job-Id"],
            "status_url": done.headers.get("Vid2mp3-Job-Location"),
        }

    def _expect(self, response: httpx.Response, status: int) -> httpx.Response:
        if response.status_code != status:
            raise self.api.error_from(response)
        return response

    @staticmethod
    def _again(exc: Exception, failures: int, stop: threading.Event) -> int:
        """Wait before the next try, or raise exc when it is not worth one (or the last)."""
        if isinstance(exc, Cancelled) or not _retryable(exc) or failures >= len(RETRY_DELAYS_S):
            raise exc
        if stop.wait(RETRY_DELAYS_S[failures]):
            raise Cancelled()
        return failures + 1
