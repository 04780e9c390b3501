"""The composition root: builds real adapters from the settings and wires the services.

Everything is created on first use, so importing or constructing opens no connection, and
each process (gunicorn worker, Celery child) builds its own after fork.
"""
from __future__ import annotations

import logging
import os
import time
from functools import cached_property
from typing import Any

from core.settings import Settings

log = logging.getLogger(__name__)


class Container:
    def __init__(self, settings: Settings, **overrides: Any):
        self.settings = settings
        for name, value in overrides.items():  # tests may pass ready-made adapters
            self.__dict__[name] = value

    # --- adapters ----------------------------------------------------------------------

    @cached_property
    def db(self):
        from core.adapters.mysql_db import MySQLDatabase

        s = self.settings
        return MySQLDatabase(s.mysql_host, s.mysql_port, s.mysql_user, s.mysql_password,
                             s.mysql_database, s.mysql_pool_size,
                             on_first_connect=self._ensure_admin)

    def _ensure_admin(self) -> None:
        self.users.ensure_admin(self.settings.admin_email, self.settings.admin_password)

    @cached_property
    def user_repo(self):
        from core.adapters.mysql_repos import MySQLUserRepository

        return MySQLUserRepository(self.db)

    @cached_property
    def job_repo(self):
        from core.adapters.mysql_repos import MySQLJobRepository

        return MySQLJobRepository(self.db)

    @cached_property
    def redis(self):
        from core.adapters.redis_items import redis_client

        return redis_client(self.settings.redis_url)

    @cached_property
    def item_store(self):
        from core.adapters.redis_items import RedisItemStore

        return RedisItemStore(self.redis, self.settings.redis_prefix)

    @cached_property
    def blob_store(self):
        s = self.settings
        if s.mongo_uri:
            from core.adapters.gridfs_store import GridFSBlobStore, mongo_client_factory

            return GridFSBlobStore(mongo_client_factory(s.mongo_uri), s.mongo_database)
        from core.adapters.dir_store import DirectoryBlobStore

        return DirectoryBlobStore(os.path.join(s.data_dir, "blobs"))

    @cached_property
    def mailer(self):
        from core.adapters.mail import OutboxMailer, SMTPMailer

        s = self.settings
        if s.smtp_url:
            return SMTPMailer(s.smtp_url, s.mail_from)
        return OutboxMailer(os.path.join(s.data_dir, "outbox"), s.mail_from)

    @cached_property
    def celery(self):
        from core.adapters.celery_queue import create_celery_app

        return create_celery_app(self.settings)

    @cached_property
    def queue(self):
        from core.adapters.celery_queue import CeleryTaskQueue

        return CeleryTaskQueue(self.celery)

    # --- services ----------------------------------------------------------------------

    @cached_property
    def passwords(self):
        from core.services.auth import Passwords

        return Passwords()

    @cached_property
    def auth(self):
        from core.services.auth import AuthService, Tokens

        s = self.settings
        return AuthService(self.user_repo, self.passwords,
                           Tokens(s.jwt_secret, s.jwt_ttl_seconds), self.login_throttle,
                           self.token_states)

    @cached_property
    def token_states(self):
        from core.adapters.redis_items import RedisTokenStates

        return RedisTokenStates(self.redis, self.settings.redis_prefix)

    @cached_property
    def login_throttle(self):
        from core.adapters.redis_items import RedisRateLimiter
        from core.services.auth import LoginThrottle

        s = self.settings
        return LoginThrottle(RedisRateLimiter(self.redis, s.redis_prefix), s.login_max_failures,
                             s.login_max_failures_per_address, s.login_window_seconds)

    @cached_property
    def users(self):
        from core.services.users import UserService

        return UserService(self.user_repo, self.passwords, self.settings.open_signup,
                           before_delete=lambda user_id: self.jobs.purge_owner(user_id),
                           tokens_changed=lambda user_id, user: self.auth.publish_state(
                               user_id, user))

    @cached_property
    def items(self):
        from core.services.items import ItemService

        s = self.settings
        return ItemService(self.item_store, s.item_default_ttl, s.item_max_bytes)

    @cached_property
    def jobs(self):
        from core.services.jobs import JobService

        s = self.settings
        return JobService(self.job_repo, self.user_repo, self.blob_store, self.queue,
                          self.mailer, os.path.join(s.data_dir, "scratch"), s.base_url,
                          s.max_upload_bytes)

    # --- health ------------------------------------------------------------------------

    def readiness(self) -> dict[str, str]:
        """'ok' or the reason, per backing service the API needs."""
        from core.domain import Unavailable

        checks = {"mysql": self.db.ping, "redis": self.item_store.ping,
                  "blob_store": self.blob_store.ping}
        report = {}
        for name, check in checks.items():
            try:
                check()
                report[name] = "ok"
            except Unavailable as exc:
                report[name] = exc.message
            except Exception as exc:  # a readiness probe reports, it never raises
                log.warning("readiness check %s failed", name, exc_info=True)
                report[name] = f"{type(exc).__name__}"
        return report

    def close(self) -> None:
        """Release the connections this container opened."""
        if "db" in self.__dict__:
            self.db.close()
        if "redis" in self.__dict__:
            self.redis.close()

    # --- observability -----------------------------------------------------------------

    @cached_property
    def metrics(self):
        """The Prometheus adapter of the Metrics port (use_metrics_dir ran in the parent)."""
        from core.adapters.prometheus_metrics import PrometheusMetrics

        return PrometheusMetrics()

    @cached_property
    def queue_collector(self):
        """vid2mp3_queue_length of every queue celeryconfig declares, read from the broker."""
        import celeryconfig
        from core.adapters.prometheus_metrics import BrokerQueueCollector
        from core.adapters.redis_items import redis_client

        s = self.settings
        return BrokerQueueCollector(lambda: redis_client(s.celery_broker_url),
                                    s.celery_key_prefix,
                                    [queue.name for queue in celeryconfig.task_queues])


def prepare(settings: Settings, wait_seconds: float = 0.0) -> None:
    """At start-up: create the database, its schema and the admin account, waiting up to
    wait_seconds for MySQL. Raises Unavailable when it does not answer in time."""
    from core.domain import Unavailable

    deadline = time.monotonic() + wait_seconds
    while True:
        container = Container(settings)
        try:
            container.db.ping()  # the first connection migrates and ensures the admin
            return
        except Unavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)
        finally:
            container.close()
