import argon2
import pytest

from core.domain import Principal, Role
from core.services.auth import AuthService, Passwords, Tokens
from core.services.items import ItemService
from core.services.jobs import JobService
from core.services.users import UserService
from tests.unit.fakes import FakeBlobs, FakeItems, FakeJobs, FakeMailer, FakeQueue, FakeUsers

SECRET = "unit-test-secret-" + "y" * 32


@pytest.fixture
def passwords():
    return Passwords(argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1,
                                           type=argon2.Type.ID))


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
    user = users.create(admin, {"name": "alice", "email": "alice@example.com",
                                "password": "alice-password"})
    return Principal(user.id, Role.USER)


@pytest.fixture
def bob(users, admin):
    user = users.create(admin, {"name": "bob", "email": "bob@example.com",
                                "password": "bob-password"})
    return Principal(user.id, Role.USER)


@pytest.fixture
def items():
    return ItemService(FakeItems(), default_ttl=365 * 24 * 3600, max_bytes=1024)


@pytest.fixture
def pipeline(user_repo, tmp_path):
    """A JobService on fakes, with the fakes reachable as attributes."""
    class Pipeline:
        pass

    p = Pipeline()
    p.jobs, p.blobs, p.queue, p.mailer = FakeJobs(), FakeBlobs(), FakeQueue(), FakeMailer()
    p.encoded = []

    def encoder(src, dst, bitrate, on_progress=None):
        from core.media import MediaInfo

        data = open(src, "rb").read()
        if b"POISON" in data:
            from core.domain import MediaError

            raise MediaError("ffmpeg cannot read this file")
        if on_progress:
            on_progress(50.0)
        with open(dst, "wb") as fh:
            fh.write(b"ID3" + data[:10])
        p.encoded.append((src, bitrate))
        return MediaInfo(duration=3.0, has_audio=True, has_video=False)

    p.service = JobService(p.jobs, user_repo, p.blobs, p.queue, p.mailer, str(tmp_path),
                           "http://api.test", max_upload_bytes=1000, encoder=encoder,
                           sniffer=lambda head: "mp4" if head.startswith(b"\x00\x00\x00\x18ftyp") else None)
    return p
