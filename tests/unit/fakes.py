"""In-memory fakes of the ports, for unit tests of the services only."""
from __future__ import annotations

import io
import itertools
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone


from core.domain import Blob, Conflict, Email, Job, NewUser, NotFound, User
from core.ports import (BlobStore, ItemStore, JobRepository, Mailer, MailError, RateLimiter,
                        TaskQueue, TokenStates, UserRepository)


class FakeUsers(UserRepository):
    def __init__(self):
        self.rows: dict[int, User] = {}
        self._ids = itertools.count(1)

    def add(self, user: NewUser) -> User:
        if any(u.name == user.name for u in self.rows.values()):
            raise Conflict("that name is taken")
        if any(u.email == user.email for u in self.rows.values()):
            raise Conflict("that email is taken")
        new = User(id=next(self._ids), name=user.name, email=user.email, phone=user.phone,
                   role=user.role, password_hash=user.password_hash,
                   created_at=datetime.now(timezone.utc))
        self.rows[new.id] = new
        return new

    def get(self, user_id):
        return self.rows.get(user_id)

    def get_by_email(self, email):
        return next((u for u in self.rows.values() if u.email == email), None)

    def get_by_name(self, name):
        return next((u for u in self.rows.values() if u.name == name), None)

    def list(self, offset, limit):
        users = sorted(self.rows.values(), key=lambda u: u.id)
        return users[offset:offset + limit], len(users)

    def update(self, user_id, changes):
        user = self.rows.get(user_id)
        if user is None:
            return None
        for key in ("name", "email"):
            if key in changes and any(getattr(u, key) == changes[key] and u.id != user_id
                                      for u in self.rows.values()):
                raise Conflict(f"that {key} is taken")
        from core.domain import Role

        for key, value in changes.items():
            setattr(user, key, Role(value) if key == "role" else value)
        return user

    def delete(self, user_id):
        return self.rows.pop(user_id, None) is not None


class FakeJobs(JobRepository):
    def __init__(self):
        self.rows: dict[str, Job] = {}

    def add(self, job: Job) -> Job:
        job.created_at = job.updated_at = datetime.now(timezone.utc).replace(tzinfo=None)
        self.rows[job.id] = job
        return job

    def get(self, job_id):
        return self.rows.get(job_id)

    def list_for_owner(self, owner_id, offset, limit):
        jobs = sorted((j for j in self.rows.values() if j.owner_id == owner_id),
                      key=lambda j: j.created_at, reverse=True)
        return jobs[offset:offset + limit], len(jobs)

    def list_ids_for_owner(self, owner_id):
        return [j.id for j in self.rows.values() if j.owner_id == owner_id]

    def update(self, job_id, changes, only_if_status=None):
        job = self.rows.get(job_id)
        if job is None or (only_if_status and job.status not in only_if_status):
            return False
        for key, value in changes.items():
            setattr(job, key, value)
        job.updated_at = datetime.now(timezone.utc).replace(tzinfo=None)
        return True

    def delete(self, job_id):
        return self.rows.pop(job_id, None) is not None

    def stale(self, statuses, older_than):
        return [j for j in self.rows.values() if j.status in statuses and j.updated_at < older_than]


class _Writer:
    def __init__(self):
        self.buffer = io.BytesIO()
        self.fid = uuid.uuid4().hex

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)


class FakeBlobs(BlobStore):
    def __init__(self):
        self.files: dict[tuple[str, str], tuple[bytes, Blob]] = {}

    @contextmanager
    def writer(self, bucket, filename, content_type, metadata=None):
        writer = _Writer()
        yield writer
        data = writer.buffer.getvalue()
        self.files[(bucket, writer.fid)] = (data, Blob(
            fid=writer.fid, size=len(data), content_type=content_type, filename=filename,
            metadata=dict(metadata or {})))

    def stat(self, bucket, fid):
        found = self.files.get((bucket, fid))
        return found[1] if found else None

    @contextmanager
    def open(self, bucket, fid):
        if (bucket, fid) not in self.files:
            raise NotFound("no such file")
        yield io.BytesIO(self.files[(bucket, fid)][0])

    @contextmanager
    def local_path(self, bucket, fid, scratch_dir):
        import os

        if (bucket, fid) not in self.files:
            raise NotFound("no such file")
        path = os.path.join(scratch_dir, f"copy-{fid}")
        with open(path, "wb") as fh:
            fh.write(self.files[(bucket, fid)][0])
        try:
            yield path
        finally:
            os.unlink(path)

    def delete(self, bucket, fid):
        return self.files.pop((bucket, fid), None) is not None

    def ping(self):
        return None

    def in_bucket(self, bucket: str) -> list[bytes]:
        return [data for (b, _), (data, _) in self.files.items() if b == bucket]


class FakeItems(ItemStore):
    def __init__(self):
        self.values: dict[tuple[int, str], tuple[dict, float]] = {}
        self.hits = 0
        self.now = time.time

    def put(self, owner_id, key, value, ttl):
        new = self.get(owner_id, key) is None
        self.values[(owner_id, key)] = (dict(value), self.now() + ttl)
        return new

    def get(self, owner_id, key):
        found = self.values.get((owner_id, key))
        if found is None or found[1] <= self.now():
            return None
        return dict(found[0]), int(found[1] - self.now())

    def delete(self, owner_id, key):
        return self.values.pop((owner_id, key), None) is not None

    def incr_hits(self):
        self.hits += 1
        return self.hits

    def ping(self):
        return None


class FakeMailer(Mailer):
    def __init__(self, failures: int = 0):
        self.sent: list[Email] = []
        self.failures = failures

    def send(self, email: Email) -> None:
        if self.failures:
            self.failures -= 1
            raise MailError("SMTP server down")
        self.sent.append(email)


class FakeQueue(TaskQueue):
    def __init__(self):
        self.converts: list[str] = []
        self.notifies: list[str] = []

    def enqueue_convert(self, job_id):
        self.converts.append(job_id)

    def enqueue_notify(self, job_id):
        self.notifies.append(job_id)


class FakeLimiter(RateLimiter):
    def __init__(self):
        self.hits: dict[str, int] = {}

    def count(self, key):
        return (self.hits.get(key, 0), 60) if key in self.hits else (0, 0)

    def hit(self, key, window):
        self.hits[key] = self.hits.get(key, 0) + 1
        return self.hits[key]

    def reset(self, key):
        self.hits.pop(key, None)


class FakeTokenStates(TokenStates):
    def __init__(self):
        self.cached: dict[int, object] = {}
        self.lookups = 0

    def get(self, user_id):
        self.lookups += 1
        return (True, self.cached[user_id]) if user_id in self.cached else (False, None)

    def offer(self, user_id, state):
        self.cached.setdefault(user_id, state)

    def publish(self, user_id, state):
        self.cached[user_id] = state
