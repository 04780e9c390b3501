"""The unit tier's wiring: the Container production builds (core.bootstrap), on settings of
its own and the in-memory fakes of every adapter; and an upload through its Intake."""

from __future__ import annotations

import argon2

from core.bootstrap import Container
from core.services.auth import Passwords
from core.settings import Settings
from tests.support.fakes import SECRET, Clock, fake_adapters

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100

# Small numbers, so that a test reaches each limit with a few bytes or calls.
UNIT_ENV = {
    "JWT_SECRET": SECRET,
    "JWT_TTL_SECONDS": "3600",
    "ADMIN_EMAIL": "admin@example.com",
    "ADMIN_PASSWORD": "admin-password",
    "PUBLIC_BASE_URL": "http://api.test",
    "MAX_UPLOAD_MB": "1",
    "UPLOAD_RATE_LIMIT": "100/hour",
    "QUOTA_ACTIVE_JOBS": "5",
    "QUOTA_STORED_MB": "1",
    "LEASE_SECONDS": "3",
    "SWEEP_AFTER_SECONDS": "60",
    "ITEM_MAX_BYTES": "1024",
    "KEEP_SOURCE": "false",
    "OPEN_SIGNUP": "false",
}


def unit_settings(tmp_path, **env: object) -> Settings:
    """The unit tier's settings, with env's overrides (names as in the environment)."""
    values = {**UNIT_ENV, "DATA_DIR": str(tmp_path), **{k: str(v) for k, v in env.items()}}
    return Settings.from_env(values, dotenv_path=None)


class Pipeline:
    """The production Container on fakes; the fakes stay reachable under short names."""

    def __init__(self, tmp_path, **env: object):
        self.clock = Clock()
        self.adapters = fake_adapters(tmp_path / "scratch", self.clock)
        fast = Passwords(
            argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=argon2.Type.ID)
        )
        self._tmp_path = tmp_path
        self.container = Container(unit_settings(tmp_path, **env), passwords=fast, **self.adapters)
        a = self.adapters
        self.user_repo, self.jobs, self.blobs = a["user_repo"], a["job_repo"], a["blob_store"]
        self.queue, self.mailer, self.limiter = a["queue"], a["mailer"], a["rate_limiter"]
        self.transcoder, self.idempotency = a["transcoder"], a["idempotency"]
        self.encoded = self.transcoder.encoded

    def rewired(self, env: dict[str, object] | None = None, **components) -> Container:
        """Another Container on the same fakes: settings with env's overrides, and components
        replaced (a fake of a test's own)."""
        settings = unit_settings(self._tmp_path, **(env or {}))
        passwords = self.container.passwords
        return Container(settings, passwords=passwords, **{**self.adapters, **components})

    def __getattr__(self, name: str):
        """A component of the container: intake, conversion, links, users, auth, ..."""
        return getattr(self.container, name)

    @property
    def quotas(self):
        return self.intake.quotas

    @property
    def keys(self):
        return self.container.idempotency_keys

    @property
    def service(self):
        return self.container.jobs


def submit(pipeline, actor, data=MP4, name="clip.mp4", options=None):
    """Upload data as name in 64-byte chunks, as the multipart parser hands it over."""
    chunks = [data[i : i + 64] for i in range(0, len(data), 64)]
    return pipeline.intake.submit(actor, name, chunks, options)
