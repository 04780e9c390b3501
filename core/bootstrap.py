"""The composition root: builds real adapters from the settings and wires the services.

Everything is created on first use, so importing or constructing opens no connection, and
each process (gunicorn worker, Celery child) builds its own after fork.
"""

from __future__ import annotations

import logging
import os
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from core.settings import Settings

if TYPE_CHECKING:  # the adapters are imported on first use, in the process that uses them
    from celery import Celery
    from prometheus_client import CollectorRegistry
    from redis import Redis

    from core.adapters.mysql.db import MySQLDatabase
    from core.adapters.prometheus import BrokerQueueCollector
    from core.adapters.redis.job_events import RedisJobEvents
    from core.domain.jobs import Job
    from core.domain.media import MediaLimits
    from core.ports.accounts import KnownAddresses, TokenStates, UserRepository
    from core.ports.api_keys import ApiKeyRepository
    from core.ports.files import BlobStore, ScratchSpace
    from core.ports.imports import Fetcher
    from core.ports.items import ItemStore
    from core.ports.jobs import (
        AttemptHolders,
        EmailClaims,
        JobLeases,
        JobRepository,
        JobSweeps,
        QuotaHolds,
    )
    from core.ports.limits import IdempotencyStore, RateLimiter, Slots
    from core.ports.mail import Mailer
    from core.ports.media import Sniffer, Transcoder
    from core.ports.metrics import Metrics
    from core.ports.queue import TaskQueue
    from core.ports.schema import SchemaMigrator
    from core.ports.upload_links import UploadLinkRepository
    from core.ports.uploads import PartialUploadStore, UploadRepository
    from core.ports.webhooks import WebhookRepository, WebhookSender
    from core.services.account_mail import AccountMail
    from core.services.api_keys import ApiKeys
    from core.services.auth import AuthService, LoginThrottle, Passwords
    from core.services.confirmations import EmailConfirmations
    from core.services.conversion import Conversion
    from core.services.idempotency import IdempotencyKeys
    from core.services.imports import Imports
    from core.services.intake import Intake
    from core.services.items import ItemService
    from core.services.job_events import JobStreams
    from core.services.jobs import JobService
    from core.services.links import LinkSigner
    from core.services.notification import Notifications
    from core.services.retention import Retention
    from core.services.sweeper import Sweeper
    from core.services.upload_links import UploadLinks
    from core.services.uploads import ResumableUploads
    from core.services.users import UserService
    from core.services.webhooks import Webhooks

log = logging.getLogger(__name__)


class Container:
    """Every component, built from the settings on first use. A keyword argument naming a
    component replaces it: the unit tier passes in-memory fakes of every adapter (and a clock)
    and gets the services wired exactly as production wires them."""

    def __init__(self, settings: Settings, **overrides: Any):
        self.settings = settings
        for name, value in overrides.items():
            if not isinstance(getattr(type(self), name, None), cached_property):
                raise TypeError(f"Container has no component {name!r} to override")
            self.__dict__[name] = value

    # --- adapters ----------------------------------------------------------------------

    @cached_property
    def clock(self) -> Callable[[], float]:
        """Seconds since the epoch: when links, confirmations and tus uploads expire."""
        return time.time

    @cached_property
    def db(self) -> MySQLDatabase:
        from core.adapters.mysql.db import MySQLDatabase

        s = self.settings
        return MySQLDatabase(
            s.mysql_host,
            s.mysql_port,
            s.mysql_user,
            s.mysql_password,
            s.mysql_database,
            s.mysql_pool_size,
            connect_timeout=s.mysql_connect_timeout,
            read_timeout=s.mysql_read_timeout,
            write_timeout=s.mysql_write_timeout,
        )

    @cached_property
    def user_repo(self) -> UserRepository:
        from core.adapters.mysql.users import MySQLUserRepository

        return MySQLUserRepository(self.db)

    @cached_property
    def job_repo(self) -> JobRepository:
        """The jobs table; each change is announced to the job's event streams."""
        from core.adapters.mysql.jobs import MySQLJobRepository
        from core.services.job_events import AnnouncingJobRepository

        return AnnouncingJobRepository(MySQLJobRepository(self.db), self.job_events)

    @cached_property
    def job_leases(self) -> JobLeases:
        from core.adapters.mysql.jobs import MySQLJobLeases
        from core.services.job_events import AnnouncingJobLeases

        return AnnouncingJobLeases(MySQLJobLeases(self.db), self.job_events, self.job_repo.get)

    @cached_property
    def job_events(self) -> RedisJobEvents:
        """Job events over Redis pub/sub: published by every job write, heard by the streams."""
        from core.adapters.redis.job_events import RedisJobEvents

        return RedisJobEvents(self.redis, self.settings.redis_prefix)

    @cached_property
    def job_streams(self) -> JobStreams:
        import json

        from core.services.job_events import JobStreams, StreamLimits

        s = self.settings
        return JobStreams(
            self.job_repo,
            self.job_events,
            self.slots,
            StreamLimits(
                per_process=s.events_max_streams,
                per_user=s.events_max_streams_per_user,
                keepalive_seconds=float(s.events_keepalive_seconds),
            ),
            dumps=lambda value: json.dumps(value, separators=(",", ":")),
        )

    @cached_property
    def email_claims(self) -> EmailClaims:
        from core.adapters.mysql.jobs import MySQLEmailClaims

        return MySQLEmailClaims(self.db)

    @cached_property
    def job_sweeps(self) -> JobSweeps:
        from core.adapters.mysql.jobs import MySQLJobSweeps

        return MySQLJobSweeps(self.db)

    @cached_property
    def quota_holds(self) -> QuotaHolds:
        from core.adapters.mysql.quotas import MySQLQuotaHolds

        return MySQLQuotaHolds(self.db)

    @cached_property
    def redis(self) -> Redis:
        from core.adapters.redis.client import redis_client

        s = self.settings
        return redis_client(s.redis_url, s.redis_timeout, s.redis_health_check_seconds)

    @cached_property
    def item_store(self) -> ItemStore:
        from core.adapters.redis.items import RedisItemStore

        s = self.settings
        return RedisItemStore(self.redis, s.redis_prefix, total_bytes=s.items_total_mb * 2**20)

    @cached_property
    def blob_store(self) -> BlobStore:
        s = self.settings
        if s.s3_bucket:
            from core.adapters.stores.s3 import S3BlobStore, S3Location, s3_client_factory

            location = S3Location(
                bucket=s.s3_bucket,
                prefix=s.s3_prefix,
                endpoint_url=s.s3_endpoint_url or None,
                region=s.s3_region or None,
                addressing_style=s.s3_addressing_style,
            )
            return S3BlobStore(s3_client_factory(location), location)
        if s.mongo_uri:
            from core.adapters.stores.gridfs import GridFSBlobStore, mongo_client_factory

            return GridFSBlobStore(
                mongo_client_factory(s.mongo_uri, s.mongo_timeout, s.mongo_socket_timeout),
                s.mongo_database,
            )
        from core.adapters.stores.directory import DirectoryBlobStore

        return DirectoryBlobStore(os.path.join(s.data_dir, "blobs"))

    @cached_property
    def mailer(self) -> Mailer:
        from core.adapters.mail import OutboxMailer, SMTPMailer

        s = self.settings
        if s.smtp_url:
            return SMTPMailer(s.smtp_url, s.mail_from, timeout=s.smtp_timeout)
        return OutboxMailer(os.path.join(s.data_dir, "outbox"), s.mail_from)

    @cached_property
    def celery(self) -> Celery:
        from core.adapters.celery import create_celery_app

        return create_celery_app(self.settings)

    @cached_property
    def queue(self) -> TaskQueue:
        from core.adapters.celery import CeleryTaskQueue

        return CeleryTaskQueue(self.celery, self.settings)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        from core.adapters.redis.rate_limits import LimitsRateLimiter

        return LimitsRateLimiter(self.redis, self.settings.redis_prefix)

    @cached_property
    def sniffer(self) -> Sniffer:
        from core.adapters.sniffer import SignatureSniffer

        return SignatureSniffer()

    @cached_property
    def media_limits(self) -> MediaLimits:
        from core.domain.media import MediaLimits

        s = self.settings
        return MediaLimits(
            max_duration=float(s.max_duration_seconds),
            min_sample_rate=s.min_sample_rate,
            max_output_bytes=s.max_output_mb * 2**20,
            memory_bytes=s.ffmpeg_memory_mb * 2**20,
        )

    @cached_property
    def transcoder(self) -> Transcoder:
        from core.adapters.ffmpeg.transcoder import FFmpegTranscoder

        return FFmpegTranscoder(self.media_limits)

    @cached_property
    def attempt_holders(self) -> AttemptHolders:
        """Which process holds a job's lease, and whether it is gone (on this machine)."""
        from core.adapters.local_processes import LocalProcesses

        return LocalProcesses()

    @cached_property
    def scratch(self) -> ScratchSpace:
        from core.adapters.stores.scratch import LocalScratch

        return LocalScratch(os.path.join(self.settings.data_dir, "scratch"))

    # --- services ----------------------------------------------------------------------

    @cached_property
    def passwords(self) -> Passwords:
        from core.services.auth import Passwords

        return Passwords()

    @cached_property
    def auth(self) -> AuthService:
        from core.services.auth import AuthService, Tokens

        s = self.settings
        return AuthService(
            self.user_repo,
            self.passwords,
            Tokens(s.jwt_secret, s.jwt_ttl_seconds),
            self.login_throttle,
            self.token_states,
        )

    @cached_property
    def api_key_repo(self) -> ApiKeyRepository:
        from core.adapters.mysql.api_keys import MySQLApiKeyRepository

        return MySQLApiKeyRepository(self.db)

    @cached_property
    def api_keys(self) -> ApiKeys:
        from core.services.api_keys import ApiKeys

        return ApiKeys(self.api_key_repo, self.login_throttle)

    @cached_property
    def token_states(self) -> TokenStates:
        from core.adapters.redis.token_states import RedisTokenStates

        return RedisTokenStates(self.redis, self.settings.redis_prefix)

    @cached_property
    def login_throttle(self) -> LoginThrottle:
        from core.services.auth import LoginThrottle

        s = self.settings
        return LoginThrottle(
            self.rate_limiter,
            s.login_max_failures,
            s.login_max_failures_per_address,
            s.login_window_seconds,
            per_account=s.login_max_failures_per_account,
            known=self.known_addresses,
        )

    @cached_property
    def known_addresses(self) -> KnownAddresses:
        from core.adapters.redis.known_addresses import RedisKnownAddresses

        return RedisKnownAddresses(self.redis, self.settings.redis_prefix)

    @cached_property
    def users(self) -> UserService:
        from core.services.users import UserService

        return UserService(
            self.user_repo,
            self.passwords,
            self.settings.open_signup,
            before_delete=lambda user_id: self.jobs.purge_owner(user_id),
            tokens_changed=lambda user_id, user: self.auth.publish_state(user_id, user),
            confirmations=self.confirmations,
            queue=self.queue,
            limiter=self.rate_limiter,
            reauthenticate=self.auth.check_password,
            password_changed=self.auth.password_changed,
        )

    @cached_property
    def confirmations(self) -> EmailConfirmations:
        from core.services.confirmations import EmailConfirmations

        s = self.settings
        return EmailConfirmations(s.jwt_secret, s.base_url, clock=self.clock)

    @cached_property
    def account_mail(self) -> AccountMail:
        from core.services.account_mail import AccountMail

        return AccountMail(self.user_repo, self.mailer, self.confirmations)

    @cached_property
    def items(self) -> ItemService:
        from core.services.items import ItemService

        s = self.settings
        return ItemService(
            self.item_store,
            s.item_default_ttl,
            s.item_max_bytes,
            s.quota_items,
            s.quota_items_mb * 2**20,
        )

    @cached_property
    def jobs(self) -> JobService:
        from core.services.jobs import JobService

        return JobService(
            self.job_repo,
            self.blob_store,
            self.links,
            keep_source=self.settings.keep_source,
            on_cancel=lambda job_id: self.queue.enqueue_event(job_id, "job.cancelled"),
            presign_seconds=(
                self.settings.s3_presign_seconds if self.settings.s3_presigned_downloads else None
            ),
        )

    @cached_property
    def webhook_repo(self) -> WebhookRepository:
        from core.adapters.mysql.webhooks import MySQLWebhookRepository

        return MySQLWebhookRepository(self.db)

    @cached_property
    def webhook_sender(self) -> WebhookSender:
        from core.adapters.http import HttpWebhookSender

        s = self.settings
        return HttpWebhookSender(allow_private=s.webhook_allow_private, timeout=s.webhook_timeout)

    @cached_property
    def slots(self) -> Slots:
        from core.adapters.redis.slots import RedisSlots

        return RedisSlots(self.redis, self.settings.redis_prefix)

    @cached_property
    def webhooks(self) -> Webhooks:
        from limits import parse

        from core.services.webhooks import DeliveryLimits, Webhooks

        s = self.settings
        redeliveries = parse(s.webhook_redeliver_rate_limit)

        def link(job: Job) -> str | None:
            if not job.mp3_fid:
                return None
            return self.links.sign(job.id, job.mp3_fid, s.link_ttl_seconds)[0]

        return Webhooks(
            self.webhook_repo,
            self.webhook_sender,
            self.queue,
            self.job_repo,
            link=link,
            metrics=self.metrics,
            slots=self.slots,
            limiter=self.rate_limiter,
            limits=DeliveryLimits(
                per_endpoint=s.webhook_endpoint_concurrency,
                per_owner=s.webhook_owner_concurrency,
                attempt_seconds=s.webhook_timeout,
                redeliveries=redeliveries.amount,
                redelivery_window=redeliveries.get_expiry(),
            ),
        )

    @cached_property
    def links(self) -> LinkSigner:
        from core.services.links import LinkSigner

        return LinkSigner(self.settings.jwt_secret, self.settings.base_url, self.clock)

    @cached_property
    def retention(self) -> Retention:
        from core.services.retention import Retention

        return Retention(self.job_repo, self.job_sweeps, self.blob_store, self.settings.keep_source)

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        from core.adapters.redis.idempotency import RedisIdempotencyStore

        return RedisIdempotencyStore(self.redis, self.settings.redis_prefix)

    @cached_property
    def idempotency_keys(self) -> IdempotencyKeys:
        from core.services.idempotency import IdempotencyKeys

        return IdempotencyKeys(self.idempotency)

    @cached_property
    def intake(self) -> Intake:
        from limits import parse

        from core.services.intake import Intake, UploadQuotas

        s = self.settings
        rate = parse(s.upload_rate_limit)
        quotas = UploadQuotas(
            uploads=rate.amount,
            per_seconds=rate.get_expiry(),
            active_jobs=s.quota_active_jobs,
            stored_bytes=s.quota_stored_mb * 2**20,
            concurrent_uploads=s.quota_concurrent_uploads,
        )
        return Intake(
            self.job_repo,
            self.quota_holds,
            self.blob_store,
            self.queue,
            self.sniffer,
            self.rate_limiter,
            quotas,
            s.max_upload_bytes,
            keys=self.idempotency_keys,
            slots=self.slots,
        )

    @cached_property
    def fetch_leases(self) -> JobLeases:
        from core.adapters.mysql.jobs import MySQLFetchLeases
        from core.services.job_events import AnnouncingJobLeases

        # a fetch's progress and its move to queued are announced like a conversion's
        return AnnouncingJobLeases(MySQLFetchLeases(self.db), self.job_events, self.job_repo.get)

    @cached_property
    def fetcher(self) -> Fetcher:
        from core.adapters.fetch import HttpFetcher

        s = self.settings
        return HttpFetcher(
            allow_private=s.import_allow_private,
            timeout=s.import_timeout,
            connect_timeout=min(s.import_connect_timeout, s.import_timeout),
        )

    @cached_property
    def imports(self) -> Imports:
        from core.services.imports import Imports

        return Imports(
            self.job_repo,
            self.fetch_leases,
            self.blob_store,
            self.queue,
            self.sniffer,
            self.fetcher,
            self.intake,
            self.settings.lease_seconds,
            keys=self.idempotency_keys,
            holders=self.attempt_holders,
        )

    @cached_property
    def conversion(self) -> Conversion:
        from datetime import timedelta

        from core.services.conversion import Conversion

        s = self.settings
        return Conversion(
            self.job_repo,
            self.job_leases,
            self.email_claims,
            self.blob_store,
            self.queue,
            self.transcoder,
            self.scratch,
            s.lease_seconds,
            retention=timedelta(seconds=s.retention_seconds),
            keep_source=s.keep_source,
            holders=self.attempt_holders,
        )

    @cached_property
    def notifications(self) -> Notifications:
        from core.services.notification import Notifications

        return Notifications(
            self.job_repo,
            self.email_claims,
            self.user_repo,
            self.mailer,
            self.settings.base_url,
            links=self.links,
            link_ttl=self.settings.link_ttl_seconds,
        )

    @cached_property
    def sweeper(self) -> Sweeper:
        from datetime import timedelta

        from core.services.sweeper import Sweeper

        return Sweeper(
            self.job_repo,
            self.job_sweeps,
            self.email_claims,
            self.queue,
            timedelta(seconds=self.settings.sweep_after_seconds),
            webhooks=self.webhook_repo,
        )

    # --- health ------------------------------------------------------------------------

    def ffmpeg_refusal(self) -> str | None:
        """None when the bundled ffmpeg is a version this code was tested with, else the one
        line a convert worker stops with."""
        from core.adapters.ffmpeg.process import check_ffmpeg_version

        return check_ffmpeg_version()

    def schema_behind(self) -> str | None:
        """None when the database's schema is at least the version this build needs, else
        "schema is at N, this build needs M: run the migration"."""
        from core.adapters.mysql.migrations import schema_version
        from core.ports.schema import behind_message

        return behind_message(schema_version(self.db), self.required_schema())

    def required_schema(self) -> int:
        """The schema version this build needs: its last migration file's."""
        from core.adapters.mysql.migrations import required_version

        return required_version()

    def migrator(self, migrations_dir: Path | None = None) -> SchemaMigrator:
        """The migration files of migrations_dir (default: those this build ships) on this
        database; MigrationError for a misnamed or empty file, or a version missing."""
        from core.adapters.mysql.migrations import SchemaMigrations, load

        s = self.settings
        return SchemaMigrations(self.db, s.migrate_lock_seconds, load(migrations_dir))

    def readiness(self) -> dict[str, str]:
        """'ok' or 'unavailable' per backing service the API needs, and whether the schema is
        the one this build needs (else the line saying so); the cause of an outage goes to the
        log only, so the public probe shows no hosts, ports or driver messages."""
        checks = {
            "mysql": self.db.ping,
            "redis": self.item_store.ping,
            "blob_store": self.blob_store.ping,
        }
        report = {}
        for name, check in checks.items():
            try:
                check()
                report[name] = "ok"
            except Exception as exc:  # a readiness probe reports, it never raises
                log.warning("readiness check %s failed", name, exc_info=True)
                # A cause in words that name no host or credential (the S3 store's) is shown.
                cause = getattr(exc, "cause", None)
                report[name] = f"unavailable: {cause}" if cause else "unavailable"
        report["schema"] = "unavailable"
        if report["mysql"] == "ok":
            try:
                report["schema"] = self.schema_behind() or "ok"
            except Exception:
                log.warning("readiness check schema failed", exc_info=True)
        return report

    def close(self) -> None:
        """Release the connections this container opened."""
        if "db" in self.__dict__:
            self.db.close()
        if "redis" in self.__dict__:
            self.redis.close()

    # --- resumable uploads (tus) -------------------------------------------------------

    @cached_property
    def upload_repo(self) -> UploadRepository:
        from core.adapters.redis.uploads import RedisUploadRepository

        return RedisUploadRepository(self.redis, self.settings.redis_prefix)

    @cached_property
    def partial_uploads(self) -> PartialUploadStore:
        """Unfinished uploads, in the same store (directory, S3 or GridFS) as the videos."""
        from core.adapters.stores.directory import DirectoryBlobStore
        from core.adapters.stores.s3 import S3BlobStore

        if isinstance(self.blob_store, DirectoryBlobStore):
            from core.adapters.stores.directory_partial import DirectoryPartialUploads

            return DirectoryPartialUploads(self.blob_store)
        if isinstance(self.blob_store, S3BlobStore):
            from core.adapters.stores.s3_partial import S3PartialUploads

            return S3PartialUploads(self.blob_store)
        from core.adapters.stores.gridfs import GridFSBlobStore
        from core.adapters.stores.gridfs_partial import GridFSPartialUploads

        assert isinstance(self.blob_store, GridFSBlobStore)
        return GridFSPartialUploads(self.blob_store)

    @cached_property
    def uploads(self) -> ResumableUploads:
        from core.services.uploads import ResumableUploads

        s = self.settings
        return ResumableUploads(
            self.upload_repo,
            self.partial_uploads,
            self.intake,
            s.max_upload_bytes,
            s.upload_expires_seconds,
            clock=self.clock,
            keys=self.idempotency_keys,
        )

    # --- one-time upload links --------------------------------------------------------------

    @cached_property
    def upload_link_repo(self) -> UploadLinkRepository:
        from core.adapters.mysql.upload_links import MySQLUploadLinkRepository

        return MySQLUploadLinkRepository(self.db)

    @cached_property
    def upload_links(self) -> UploadLinks:
        from core.services.upload_links import UploadLinks

        s = self.settings
        return UploadLinks(
            self.upload_link_repo,
            self.user_repo,
            self.intake,
            self.jobs,
            s.base_url,
            s.max_upload_bytes,
            claim_seconds=s.api_timeout,
            resumable=self.uploads,
            resumable_seconds=s.upload_expires_seconds,
        )

    # --- observability -----------------------------------------------------------------

    @cached_property
    def metrics(self) -> Metrics:
        """The Prometheus adapter of the Metrics port (use_metrics_dir ran in the parent)."""
        from core.adapters.prometheus import PrometheusMetrics

        return PrometheusMetrics()

    def metrics_registry(self) -> CollectorRegistry:
        """What the API's /metrics serves: the samples of every gunicorn worker, and the
        queue lengths."""
        from core.adapters.prometheus import registry

        return registry(self.queue_collector)

    def serve_worker_metrics(self, queue: str, node: str, pool: int) -> None:
        """Serve a worker's /metrics on WORKER_METRICS_PORT from a thread of this process: its
        pool's samples and the worker's own; ConfigError when another process listens there."""
        from core.adapters.prometheus import WorkerCollector, registry, serve

        s = self.settings
        served = registry(WorkerCollector(queue, node, pool))
        serve(s.worker_metrics_port, s.worker_metrics_host, served)

    @cached_property
    def queue_collector(self) -> BrokerQueueCollector:
        """vid2mp3_queue_length of every queue celeryconfig declares, read from the broker."""
        import celeryconfig
        from core.adapters.prometheus import BrokerQueueCollector
        from core.adapters.redis.client import redis_client

        s = self.settings
        return BrokerQueueCollector(
            lambda: redis_client(s.celery_broker_url, s.broker_timeout),
            s.celery_key_prefix,
            list(celeryconfig.QUEUES),
        )


def schema_behind(settings: Settings, wait_seconds: float = 0.0) -> str | None:
    """At a process's start: None when the database's schema is the one this build needs (or
    newer), else the one line to stop with. Waits up to wait_seconds for MySQL; raises
    Unavailable when it does not answer in time. Processes never migrate: `python -m
    core.migrate` does, once per deploy."""
    from core.domain.errors import Unavailable

    deadline = time.monotonic() + wait_seconds
    while True:
        container = Container(settings)
        try:
            return container.schema_behind()
        except Unavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)
        finally:
            container.close()
