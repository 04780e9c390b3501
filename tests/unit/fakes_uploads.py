"""In-memory fakes of the resumable-upload ports, for unit tests of ResumableUploads."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone

from core.domain.errors import NotFound
from core.domain.files import Blob
from core.domain.jobs import Upload
from core.ports.uploads import PartialUploadStore, UploadRepository
from tests.unit.fakes import FakeBlobs


class FakeLease:
    def __init__(self):
        self.renewals = 0

    def renew(self):
        self.renewals += 1
        return True


class FakeUploadRepo(UploadRepository):
    def __init__(self):
        self.rows: dict[str, Upload] = {}
        self.locked: set[str] = set()

    def add(self, upload):
        self.rows[upload.id] = replace(upload)

    def get(self, upload_id):
        row = self.rows.get(upload_id)
        return replace(row) if row else None

    def update(self, upload_id, changes):
        for name, value in changes.items():
            setattr(self.rows[upload_id], name, value)

    def delete(self, upload_id):
        return self.rows.pop(upload_id, None) is not None

    def expired(self, now):
        return [u.id for u in self.rows.values() if u.expires_at < now]

    @contextmanager
    def lock(self, upload_id, ttl):
        if upload_id in self.locked:
            yield None
            return
        self.locked.add(upload_id)
        try:
            yield FakeLease()
        finally:
            self.locked.discard(upload_id)


class _Sink:
    def __init__(self, buffer: bytearray):
        self.buffer = buffer
        self.size = 0

    def write(self, data):
        self.buffer += data
        self.size += len(data)
        return len(data)


class FakePartialStore(PartialUploadStore):
    """Partial uploads as byte arrays; finishing moves them into a FakeBlobs bucket."""

    def __init__(self, blobs: FakeBlobs, clock=None):
        import time

        self.blobs = blobs
        self.clock = clock or time.time
        self.parts: dict[str, tuple[str, bytearray]] = {}
        self.touched: dict[str, datetime] = {}

    def create(self, bucket):
        handle = uuid.uuid4().hex
        self.parts[handle] = (bucket, bytearray())
        self.touched[handle] = datetime.fromtimestamp(self.clock(), timezone.utc).replace(
            tzinfo=None
        )
        return handle

    @contextmanager
    def appender(self, handle, offset):
        if handle not in self.parts:
            raise NotFound("upload not found")
        buffer = self.parts[handle][1]
        del buffer[offset:]
        yield _Sink(buffer)

    def truncate(self, handle, size):
        del self.parts[handle][1][size:]

    def size(self, handle):
        return len(self.parts[handle][1]) if handle in self.parts else None

    def finish(self, handle, filename, content_type, metadata=None):
        bucket, data = self.parts.pop(handle)
        blob = Blob(
            fid=handle,
            size=len(data),
            content_type=content_type,
            filename=filename,
            metadata=dict(metadata or {}),
        )
        self.blobs.files[(bucket, handle)] = (bytes(data), blob)
        return blob

    def delete(self, handle):
        return self.parts.pop(handle, None) is not None

    def stale(self, older_than):
        return [h for h in self.parts if self.touched[h] < older_than]
