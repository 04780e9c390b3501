from datetime import timedelta

import argon2
import pytest

from core.domain.accounts import Principal, Role
from core.services.auth import AuthService, Passwords, Tokens
from core.services.conversion import Conversion
from core.services.idempotency import IdempotencyKeys
from core.services.intake import Intake, UploadQuotas
from core.services.items import ItemService
from core.services.jobs import JobService
from core.services.links import LinkSigner
from core.services.notification import Notifications
from core.services.retention import Retention
from core.services.sweeper import Sweeper
from core.services.users import UserService
from tests.support.fakes import (
    SECRET,
    FakeBlobs,
    FakeIdempotency,
    FakeItems,
    FakeJobs,
    FakeLimiter,
    FakeMailer,
    FakeQueue,
    FakeSniffer,
    FakeTranscoder,
    FakeUsers,
    TmpScratch,
)


@pytest.fixture
def passwords():
    return Passwords(
        argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=argon2.Type.ID)
    )


@pytest.fixture
def user_repo():
    return FakeUsers()


@pytest.fixture
def users(user_repo, passwords):
    return UserService(user_repo, passwords, open_signup=False)


@pytest.fixture
def auth(user_repo, passwords):
    return AuthService(user_repo, passwords, Tokens(SECRET, 3600))


@pytest.fixture
def admin(users):
    user = users.ensure_admin("admin@example.com", "admin-password")
    return Principal(user.id, Role.ADMIN)


@pytest.fixture
def alice(users, admin):
    user = users.create(
        admin, {"name": "alice", "email": "alice@example.com", "password": "alice-password"}
    )
    return Principal(user.id, Role.USER)


@pytest.fixture
def bob(users, admin):
    user = users.create(
        admin, {"name": "bob", "email": "bob@example.com", "password": "bob-password"}
    )
    return Principal(user.id, Role.USER)


@pytest.fixture
def items():
    return ItemService(FakeItems(), default_ttl=365 * 24 * 3600, max_bytes=1024)


@pytest.fixture
def pipeline(user_repo, tmp_path):
    """The job services on fakes, with the fakes reachable as attributes."""

    class Pipeline:
        pass

    p = Pipeline()
    p.jobs, p.blobs, p.queue, p.mailer = FakeJobs(), FakeBlobs(), FakeQueue(), FakeMailer()
    p.transcoder, p.limiter = FakeTranscoder(), FakeLimiter()
    p.quotas = UploadQuotas(uploads=100, per_seconds=3600, active_jobs=5, stored_bytes=10_000)
    p.idempotency = FakeIdempotency()
    p.keys = IdempotencyKeys(p.idempotency)
    p.intake = Intake(
        p.jobs,
        p.jobs,
        p.blobs,
        p.queue,
        FakeSniffer(),
        p.limiter,
        p.quotas,
        max_upload_bytes=1000,
        keys=p.keys,
    )
    p.clock = [1_000_000.0]
    p.links = LinkSigner(
        "link-secret-for-unit-tests-0123456789", "http://api.test", clock=lambda: p.clock[0]
    )
    p.service = JobService(p.jobs, p.blobs, p.links, keep_source=False)
    p.conversion = Conversion(
        p.jobs,
        p.jobs,
        p.jobs,
        p.blobs,
        p.queue,
        p.transcoder,
        TmpScratch(tmp_path / "scratch"),
        lease_seconds=3,
    )
    p.notifications = Notifications(p.jobs, p.jobs, user_repo, p.mailer, "http://api.test")
    p.sweeper = Sweeper(p.jobs, p.jobs, p.jobs, p.queue, timedelta(seconds=60))
    p.retention = Retention(p.jobs, p.jobs, p.blobs, keep_source=False)
    p.encoded = p.transcoder.encoded
    return p
