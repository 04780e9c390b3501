"""Typed settings read once from the environment (over a .env file) and validated at start."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


_REQUIRED = object()
Check = Callable[[str, Any], None]  # (variable, value): raises ConfigError naming the variable


def _opt(
    env: str,
    default: Any = _REQUIRED,
    secret: bool = False,
    doc: str = "",
    *,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] | None = None,
    ignore_case: bool = False,
    pattern: str | None = None,
    message: str | None = None,
    check: Check | None = None,
) -> Any:
    """A setting read from `env`, with the rules its value must keep beside it: positive, a
    range (minimum, maximum), choices, a pattern the whole text must match, or a check of its
    own; `message` replaces the default words of a broken range, choice or pattern."""
    return field(
        default=None if default is _REQUIRED else default,
        metadata={
            "env": env,
            "required": default is _REQUIRED,
            "secret": secret,
            "doc": doc,
            "positive": positive,
            "minimum": minimum,
            "maximum": maximum,
            "choices": choices,
            "ignore_case": ignore_case,
            "pattern": pattern,
            "message": message,
            "check": check,
        },
    )


def _strong(min_length: int) -> Check:
    """A secret of at least min_length characters, neither repetitive nor well known."""
    return lambda env, value: _check_secret(env, value, min_length)


def _flower_auth(env: str, value: str) -> None:
    if value:
        check_flower_auth(value)


def _rate(env: str, value: str) -> None:
    _check_rate(env, value)


def _proxies(env: str, value: str) -> None:
    parse_proxy_networks(value)  # raises ConfigError on a malformed value


@dataclass(frozen=True)
class Settings:
    mysql_host: str = _opt("MYSQL_HOST", "127.0.0.1", doc="MySQL/MariaDB host")
    mysql_port: int = _opt("MYSQL_PORT", 3306, doc="MySQL port")
    mysql_user: str = _opt("MYSQL_USER", "root", doc="MySQL user")
    mysql_password: str = _opt("MYSQL_PASSWORD", "", secret=True, doc="MySQL password")
    mysql_database: str = _opt("MYSQL_DATABASE", "vid2mp3", doc="database, created if missing")
    mysql_pool_size: int = _opt("MYSQL_POOL_SIZE", 5, doc="connections per process", positive=True)
    mysql_connect_timeout: int = _opt(
        "MYSQL_CONNECT_TIMEOUT_SECONDS",
        3,
        doc="how long opening a MySQL connection (TCP, handshake, login) may take",
        minimum=1,
        maximum=300,
    )
    mysql_read_timeout: int = _opt(
        "MYSQL_READ_TIMEOUT_SECONDS",
        10,
        doc="how long a query waits for MySQL's answer before its connection is dropped and "
        "MySQL counts as down (503, a retried task, a lease given up); unset in the driver: "
        "forever. The migration's own connection has none (a lock wait, a long ALTER)",
        minimum=1,
        maximum=3600,
    )
    mysql_write_timeout: int = _opt(
        "MYSQL_WRITE_TIMEOUT_SECONDS",
        10,
        doc="how long sending a query to MySQL may block",
        minimum=1,
        maximum=3600,
    )
    migrate_lock_seconds: int = _opt(
        "MIGRATE_LOCK_SECONDS",
        60,
        doc="how long `python -m core.migrate` waits for another run's lock; then it stops, "
        "applying nothing",
        positive=True,
    )
    redis_url: str = _opt(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        doc="Redis for TTL items, hit counter and rate limits",
        pattern=r"(?s)(redis|rediss|unix)(://.*)?",
        message="must be a redis:// URL",
    )
    redis_prefix: str = _opt("REDIS_PREFIX", "vid2mp3:", doc="prefix of every key the API writes")
    redis_timeout: float = _opt(
        "REDIS_TIMEOUT_SECONDS",
        2.0,
        doc="connect and read timeout of each Redis command (REDIS_URL): a silent Redis "
        "answers 503 after a few of these",
        minimum=0.1,
        maximum=60,
    )
    redis_health_check_seconds: int = _opt(
        "REDIS_HEALTH_CHECK_SECONDS",
        30,
        doc="a pooled Redis connection idle this long is pinged before use (0: never)",
        minimum=0,
        maximum=3600,
    )
    jwt_secret: str = _opt(
        "JWT_SECRET", secret=True, doc="HS256 signing key (required, 32+ chars)", check=_strong(32)
    )
    jwt_ttl_seconds: int = _opt(
        "JWT_TTL_SECONDS", 3600, doc="lifetime of an access token", positive=True
    )
    admin_email: str = _opt(
        "ADMIN_EMAIL",
        doc="admin account the migration (python -m core.migrate) creates if missing",
        pattern=r"(?s).*@.*",
        message="must be an email address",
    )
    admin_password: str = _opt(
        "ADMIN_PASSWORD", secret=True, doc="its password (required)", check=_strong(12)
    )
    login_max_failures: int = _opt(
        "LOGIN_MAX_FAILURES",
        5,
        doc="password guesses at one account from one client address within the window before 429",
        positive=True,
    )
    login_max_failures_per_account: int = _opt(
        "LOGIN_MAX_FAILURES_PER_ACCOUNT",
        10,
        doc="password guesses at one account from addresses it never signed in from, "
        "within the window, before those addresses get 429",
        positive=True,
    )
    login_max_failures_per_address: int = _opt(
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        20,
        doc="failed logins per client address within the window before 429",
        positive=True,
    )
    login_window_seconds: int = _opt(
        "LOGIN_WINDOW_SECONDS", 300, doc="login rate-limit window", positive=True
    )
    trusted_proxies: int = _opt(
        "TRUSTED_PROXIES",
        0,
        doc="proxy hops in front of the API: the client address is taken this many entries "
        "from the right of X-Forwarded-For, only on connections from FORWARDED_ALLOW_IPS",
        minimum=0,
        message="must be 0 or more",
    )
    forwarded_allow_ips: str = _opt(
        "FORWARDED_ALLOW_IPS",
        "127.0.0.1",
        doc="addresses or networks (comma-separated, CIDR allowed; * for any) of the proxies "
        "whose X-Forwarded-For and -Proto are believed, by gunicorn and the app",
        check=_proxies,
    )
    cors_origins: str = _opt(
        "CORS_ORIGINS", "", doc="comma-separated origins allowed by CORS; empty: CORS off"
    )
    open_signup: bool = _opt(
        "OPEN_SIGNUP", False, doc="true: anyone may POST /users; false: only admins"
    )
    api_host: str = _opt(
        "API_HOST",
        "127.0.0.1",
        doc="address gunicorn binds (0.0.0.0 in containers)",
        pattern=r"(?s).+",
        message="must be an address to bind, e.g. 127.0.0.1",
    )
    api_port: int = _opt(
        "API_PORT",
        8080,
        doc="port gunicorn listens on",
        minimum=1,
        maximum=65535,
        message="must be a TCP port",
    )
    web_concurrency: int = _opt(
        "WEB_CONCURRENCY", 2, doc="gunicorn worker processes", positive=True
    )
    api_threads: int = _opt("API_THREADS", 4, doc="threads per gunicorn worker", positive=True)
    events_max_streams: int = _opt(
        "EVENTS_MAX_STREAMS",
        100,
        doc="open event streams (GET /jobs/<id>/events) per API process; past it 503",
        positive=True,
    )
    events_max_streams_per_user: int = _opt(
        "EVENTS_MAX_STREAMS_PER_USER",
        10,
        doc="open event streams per user, all API processes together; past it 503",
        positive=True,
    )
    events_keepalive_seconds: int = _opt(
        "EVENTS_KEEPALIVE_SECONDS",
        15,
        doc="an event stream sends a keepalive comment after this long without an event",
        positive=True,
    )
    events_send_timeout_seconds: int = _opt(
        "EVENTS_SEND_TIMEOUT_SECONDS",
        30,
        doc="an event stream whose client reads nothing for this long is closed",
        positive=True,
    )
    events_ticket_seconds: int = _opt(
        "EVENTS_TICKET_SECONDS",
        60,
        doc="lifetime of the signed URL a browser opens a job's event stream with",
        positive=True,
    )
    api_timeout: int = _opt(
        "API_TIMEOUT",
        300,
        doc="gunicorn worker timeout, seconds (large uploads take time)",
        positive=True,
    )
    public_base_url: str = _opt(
        "PUBLIC_BASE_URL", "", doc="base of links in emails (default http://127.0.0.1:API_PORT)"
    )
    item_default_ttl: int = _opt(
        "ITEM_DEFAULT_TTL", 365 * 24 * 3600, doc="TTL of items, seconds", positive=True
    )
    item_max_bytes: int = _opt("ITEM_MAX_BYTES", 64 * 1024, doc="largest item body", positive=True)
    max_json_bytes: int = _opt(
        "MAX_JSON_BYTES", 1024 * 1024, doc="largest JSON request body", positive=True
    )
    max_upload_mb: int = _opt("MAX_UPLOAD_MB", 2048, doc="largest video upload, MiB", positive=True)
    data_dir: str = _opt("DATA_DIR", "./data", doc="directory store, mail outbox and scratch files")
    mongo_uri: str = _opt(
        "MONGO_URI", "", secret=True, doc="set: videos and MP3s in GridFS; unset: directory store"
    )
    mongo_database: str = _opt("MONGO_DATABASE", "vid2mp3", doc="GridFS database")
    mongo_timeout: float = _opt(
        "MONGO_TIMEOUT_SECONDS",
        3.0,
        doc="GridFS: how long to find a reachable server and to connect to it",
        minimum=0.1,
        maximum=120,
    )
    mongo_socket_timeout: float = _opt(
        "MONGO_SOCKET_TIMEOUT_SECONDS",
        30.0,
        doc="GridFS: how long one read or write (a chunk, an answer) may wait on the socket; "
        "a silent server is an outage after this (unset in the driver: forever)",
        minimum=1,
        maximum=600,
    )
    s3_bucket: str = _opt(
        "S3_BUCKET",
        "",
        doc="set: videos and MP3s in this S3 bucket (not with MONGO_URI); credentials from "
        "the AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role)",
        pattern=r"|[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        message="must be an S3 bucket name: 3 to 63 lowercase letters, digits, dots or hyphens",
    )
    s3_endpoint_url: str = _opt(
        "S3_ENDPOINT_URL",
        "",
        doc="the S3 server (SeaweedFS, MinIO, R2...); empty: AWS",
        pattern=r"|https?://[^\s/?#]+(/[^\s?#]*)?",
        message="must be an http:// or https:// URL",
    )
    s3_region: str = _opt("S3_REGION", "us-east-1", doc="region signed into requests")
    s3_addressing_style: str = _opt(
        "S3_ADDRESSING_STYLE",
        "path",
        doc="path (https://host/bucket/key) or virtual (https://bucket.host/key)",
        choices=("path", "virtual"),
    )
    s3_prefix: str = _opt(
        "S3_PREFIX",
        "vid2mp3/",
        doc="start of every object key, so one bucket can serve several deployments",
        pattern=r"|[A-Za-z0-9!_.*'()/-]{0,200}/",
        message="must end with / and use only letters, digits and !_.*'()- (S3's safe characters)",
    )
    s3_presigned_downloads: bool = _opt(
        "S3_PRESIGNED_DOWNLOADS",
        False,
        doc="with S3_BUCKET: downloads (any format) answer 302 to a presigned S3 URL instead of "
        "streaming through the API",
    )
    s3_presign_seconds: int = _opt(
        "S3_PRESIGN_SECONDS",
        300,
        doc="lifetime of a presigned download URL",
        minimum=1,
        maximum=604800,
    )
    celery_broker_url: str = _opt(
        "CELERY_BROKER_URL",
        "redis://127.0.0.1:6379/1",
        doc="Celery broker (not the items database)",
    )
    broker_timeout: float = _opt(
        "BROKER_TIMEOUT_SECONDS",
        10.0,
        doc="connect and read timeout of a connection to the broker (a worker waits at most "
        "one second for a message, so this bounds how long a silent broker goes unnoticed; "
        "the worker then reconnects)",
        minimum=2,
        maximum=300,
    )
    broker_heartbeat_seconds: int = _opt(
        "BROKER_HEARTBEAT_SECONDS",
        10,
        doc="keepalive of the broker connection: Redis pings a connection idle this long "
        "(health_check_interval) with TCP keepalive on; AMQP's heartbeat (0: off)",
        minimum=0,
        maximum=600,
    )
    celery_key_prefix: str = _opt(
        "CELERY_KEY_PREFIX", "", doc="prefix of the broker's Redis keys (tests isolate runs)"
    )
    smtp_url: str = _opt(
        "SMTP_URL",
        "",
        secret=True,
        doc="smtp://user:pass@host:port (smtps:// for TLS, ?starttls=1); "
        "unset: .eml files in DATA_DIR/outbox",
    )
    smtp_timeout: float = _opt(
        "SMTP_TIMEOUT_SECONDS",
        10.0,
        doc="timeout of each SMTP step (connect, each command and reply); a silent server "
        "fails the send, which is retried (at most 60: a claimed email is held five minutes)",
        minimum=1,
        maximum=60,
    )
    mail_from: str = _opt("MAIL_FROM", "vid2mp3 <noreply@localhost>", doc="sender of emails")
    convert_soft_time_limit: int = _opt(
        "CONVERT_SOFT_TIME_LIMIT",
        1800,
        doc="seconds before a conversion is asked to stop",
        positive=True,
    )
    convert_time_limit: int = _opt(
        "CONVERT_TIME_LIMIT", 1900, doc="seconds before a conversion is killed"
    )
    convert_concurrency: int = _opt(
        "CONVERT_CONCURRENCY",
        1,
        doc="conversions at once per convert worker",
        positive=True,
    )
    notify_concurrency: int = _opt(
        "NOTIFY_CONCURRENCY", 4, doc="emails at once per notify worker", positive=True
    )
    notify_max_retries: int = _opt("NOTIFY_MAX_RETRIES", 8, doc="SMTP retries before giving up")
    notify_retry_base: float = _opt(
        "NOTIFY_RETRY_BASE_SECONDS",
        10.0,
        doc="first SMTP retry delay; doubles each time, up to 600 s",
    )
    sweep_after_seconds: int = _opt(
        "SWEEP_AFTER_SECONDS",
        900,
        doc="a queued job not in the broker this long is re-enqueued",
        positive=True,
    )
    sweep_interval_seconds: float = _opt(
        "SWEEP_INTERVAL_SECONDS",
        60.0,
        doc="how often beat runs the sweeper",
        positive=True,
    )
    lease_seconds: int = _opt(
        "LEASE_SECONDS",
        30,
        doc="a conversion's lease; renewed every third of it, reclaimed "
        "by the sweeper once expired",
        positive=True,
    )
    worker_max_tasks_per_child: int = _opt(
        "WORKER_MAX_TASKS_PER_CHILD",
        100,
        doc="tasks a worker pool process runs before it is replaced",
        positive=True,
    )
    max_duration_seconds: int = _opt(
        "MAX_DURATION_SECONDS",
        4 * 3600,
        doc="longest source accepted; longer or endless sources fail",
        positive=True,
    )
    min_sample_rate: int = _opt(
        "MIN_SAMPLE_RATE",
        8000,
        doc="lowest audio sample rate accepted, Hz",
        positive=True,
    )
    max_output_mb: int = _opt(
        "MAX_OUTPUT_MB", 600, doc="largest MP3 ffmpeg may write, MiB", positive=True
    )
    ffmpeg_memory_mb: int = _opt(
        "FFMPEG_MEMORY_MB",
        2048,
        doc="address-space limit of each ffmpeg child, MiB",
        positive=True,
        minimum=256,
    )
    quota_stored_mb: int = _opt(
        "QUOTA_STORED_MB",
        20480,
        doc="videos and MP3s one user may keep stored, MiB",
        positive=True,
    )
    quota_active_jobs: int = _opt(
        "QUOTA_ACTIVE_JOBS",
        10,
        doc="queued or converting jobs one user may have at once",
        positive=True,
    )
    quota_concurrent_uploads: int = _opt(
        "QUOTA_CONCURRENT_UPLOADS",
        2,
        doc="uploads (POST /upload, tus PATCH) one user may be sending at once; keep it well "
        "under WEB_CONCURRENCY x API_THREADS",
        positive=True,
    )
    body_timeout_seconds: int = _opt(
        "BODY_TIMEOUT_SECONDS",
        20,
        doc="a request body that sends nothing for this long is cut off with 408",
        positive=True,
    )
    body_min_rate: int = _opt(
        "BODY_MIN_RATE",
        1024,
        doc="bytes per second a request body must average after its first "
        "BODY_TIMEOUT_SECONDS, or it is cut off with 408",
        positive=True,
    )
    quota_items: int = _opt("QUOTA_ITEMS", 10000, doc="TTL items one user may keep", positive=True)
    quota_items_mb: int = _opt(
        "QUOTA_ITEMS_MB",
        10,
        doc="MiB of Redis one user's TTL items may take (each counts its JSON, its key and "
        "100 bytes)",
        positive=True,
    )
    items_total_mb: int = _opt(
        "ITEMS_TOTAL_MB",
        256,
        doc="MiB of Redis all users' TTL items may take together: keep it well under Redis's "
        "maxmemory, which the broker, rate limits and uploads share",
        positive=True,
    )
    upload_rate_limit: str = _opt(
        "UPLOAD_RATE_LIMIT",
        "120/hour",
        doc="uploads per user, as the limits package writes rates "
        "(e.g. 120/hour; 10/minute;100/day)",
        check=_rate,
    )
    flower_port: int = _opt("FLOWER_PORT", 5555, doc="Flower dashboard port")
    flower_basic_auth: str = _opt(
        "FLOWER_BASIC_AUTH",
        "",
        secret=True,
        doc="user:password for Flower; Flower refuses to start without",
        check=_flower_auth,
    )
    upload_expires_seconds: int = _opt(
        "UPLOAD_EXPIRES_SECONDS",
        24 * 3600,
        doc="an unfinished resumable (tus) upload expires this long after its last PATCH",
        positive=True,
    )
    keep_source: bool = _opt(
        "KEEP_SOURCE",
        False,
        doc="true: keep the uploaded video until the MP3 expires; false: "
        "delete it when its job ends",
    )
    retention_seconds: int = _opt(
        "RETENTION_SECONDS",
        7 * 24 * 3600,
        doc="an MP3 is deleted this long after its job finished "
        "(the job then shows status expired)",
        positive=True,
    )
    link_ttl_seconds: int = _opt(
        "LINK_TTL_SECONDS",
        24 * 3600,
        doc="lifetime of the download link in the 'MP3 is ready' email",
        minimum=60,
        maximum=604800,
    )
    import_allow_private: bool = _opt(
        "IMPORT_ALLOW_PRIVATE",
        False,
        doc="true: imports by URL (POST /jobs) may fetch from loopback and private addresses "
        "(development, tests, private deployments only)",
    )
    import_timeout: float = _opt(
        "IMPORT_TIMEOUT_SECONDS",
        3600.0,
        doc="deadline of one import by URL, connect to last byte, however the server trickles",
        positive=True,
        maximum=6 * 3600,
    )
    import_connect_timeout: float = _opt(
        "IMPORT_CONNECT_TIMEOUT_SECONDS",
        10.0,
        doc="deadline of an import's connection (and TLS handshake) to each server it is sent "
        "to, within IMPORT_TIMEOUT_SECONDS",
        positive=True,
        maximum=300,
    )
    fetch_concurrency: int = _opt(
        "FETCH_CONCURRENCY",
        4,
        doc="imports by URL downloaded at once per fetch worker",
        positive=True,
    )
    webhook_allow_private: bool = _opt(
        "WEBHOOK_ALLOW_PRIVATE",
        False,
        doc="true: webhooks may call loopback and private addresses (development, tests only)",
    )
    webhook_concurrency: int = _opt(
        "WEBHOOK_CONCURRENCY",
        8,
        doc="webhook deliveries at once per webhooks worker",
        positive=True,
    )
    webhook_retry_base: float = _opt(
        "WEBHOOK_RETRY_BASE_SECONDS",
        30.0,
        doc="first webhook retry delay; doubles each time up to an hour, for 24 h",
        positive=True,
    )
    webhook_timeout: float = _opt(
        "WEBHOOK_TIMEOUT_SECONDS",
        10.0,
        doc="deadline of one webhook attempt, connect to answer, however the receiver "
        "trickles (at most 60)",
        positive=True,
        maximum=60,  # a claimed attempt is held two minutes (core/services/webhooks.py, SENDING)
    )
    webhook_endpoint_concurrency: int = _opt(
        "WEBHOOK_ENDPOINT_CONCURRENCY",
        2,
        doc="webhook deliveries in flight at once to one receiver, over all workers; "
        "more wait their turn",
        positive=True,
    )
    webhook_owner_concurrency: int = _opt(
        "WEBHOOK_OWNER_CONCURRENCY",
        4,
        doc="webhook deliveries in flight at once to one user's receivers, over all workers; "
        "more wait their turn",
        positive=True,
    )
    webhook_redeliver_rate_limit: str = _opt(
        "WEBHOOK_REDELIVER_RATE_LIMIT",
        "10/minute",
        doc="manual webhook redeliveries per user, as the limits package writes rates",
        check=_rate,
    )
    log_level: str = _opt(
        "LOG_LEVEL",
        "INFO",
        doc="logging level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        ignore_case=True,
    )
    log_format: str = _opt(
        "LOG_FORMAT",
        "text",
        doc="text, or json: one JSON object per line with request_id, job_id",
        choices=("text", "json"),
    )
    metrics_token: str = _opt(
        "METRICS_TOKEN",
        "",
        secret=True,
        doc="set: GET /metrics needs `Authorization: Bearer <token>`",
        pattern=r"(?s)(.{16,})?",
        message="must be at least 16 characters when set",
    )
    metrics_dir: str = _opt(
        "METRICS_DIR",
        "",
        doc="per-process metric files (Prometheus multiprocess mode); default DATA_DIR/metrics",
    )
    worker_metrics_port: int = _opt(
        "WORKER_METRICS_PORT",
        0,
        doc="port of a worker's /metrics (each worker needs its own); 0: off; "
        "taken by another process: the worker stops with one line",
        minimum=0,
        maximum=65535,
        message="must be 0 (off) or a TCP port",
    )
    worker_metrics_host: str = _opt(
        "WORKER_METRICS_HOST", "127.0.0.1", doc="address a worker's metrics port listens on"
    )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        dotenv_path: str | os.PathLike[str] | None = ".env",
        overrides: Mapping[str, Any] | None = None,
    ) -> "Settings":
        """Read every setting: overrides, then the environment, then the .env file."""
        source: dict[str, str] = {}
        if dotenv_path and Path(dotenv_path).is_file():
            from dotenv import dotenv_values

            source.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        source.update(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            env = f.metadata["env"]
            if overrides and f.name in overrides:
                values[f.name] = overrides[f.name]
            elif overrides and env in overrides:
                values[f.name] = overrides[env]
            elif env in source and source[env] != "":
                values[f.name] = _parse(env, f.type, source[env])
            elif f.metadata["required"]:
                raise ConfigError(f"{env} is required but not set")
            else:
                values[f.name] = f.default
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise ConfigError naming the first variable whose value cannot work: a placeholder
        anywhere, then each field's own rules (beside the field), then the rules that span
        fields."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and _PLACEHOLDER.search(value):
                raise ConfigError(
                    f"{f.metadata['env']} still holds a placeholder; set a real value"
                )
        for f in fields(self):
            _check_field(f.metadata, getattr(self, f.name))
        if not self.mysql_password and self.mysql_host not in _LOOPBACK:
            raise ConfigError(
                "MYSQL_PASSWORD is empty; only a MySQL on loopback may go without one"
            )
        if self.s3_bucket and self.mongo_uri:
            raise ConfigError(
                "S3_BUCKET and MONGO_URI are both set: choose one blob store (unset the other)"
            )
        if self.s3_presigned_downloads and not self.s3_bucket:
            raise ConfigError("S3_PRESIGNED_DOWNLOADS needs S3_BUCKET: only S3 can presign")
        if self.convert_time_limit <= self.convert_soft_time_limit:
            raise ConfigError("CONVERT_TIME_LIMIT must be greater than CONVERT_SOFT_TIME_LIMIT")
        if self.trusted_proxies and self.proxy_networks is not None and not self.proxy_networks:
            raise ConfigError("TRUSTED_PROXIES is set but FORWARDED_ALLOW_IPS names no proxy")
        if same_redis_database(self.redis_url, self.celery_broker_url):
            raise ConfigError(
                "CELERY_BROKER_URL must not be the Redis database of REDIS_URL: users' items "
                "would share the broker's keys; give it its own database (/1) or server"
            )

    def with_overrides(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://127.0.0.1:{self.api_port}").rstrip("/")

    @property
    def proxy_networks(self) -> list[IPNetwork] | None:
        """The networks of FORWARDED_ALLOW_IPS; None when it is `*` (any peer)."""
        return parse_proxy_networks(self.forwarded_allow_ips)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @classmethod
    def documented(cls) -> list[dict[str, Any]]:
        """Every variable with its default and meaning, for docs/configuration.md and the checks."""
        return [
            {
                "env": f.metadata["env"],
                "required": f.metadata["required"],
                "secret": f.metadata["secret"],
                "default": f.default,
                "doc": f.metadata["doc"],
            }
            for f in fields(cls)
        ]


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Values from secrets.example.yaml and .env.example that must never reach a running process.
_PLACEHOLDER = re.compile(r"replace[_-]?me|change[_-]?me|changeit", re.IGNORECASE)
_WEAK = {
    "password",
    "passw0rd",
    "admin",
    "administrator",
    "secret",
    "letmein",
    "qwerty",
    "12345678",
    "123456789",
    "1234567890",
    "iloveyou",
    "welcome",
    "default",
}


def _check_secret(env: str, value: str | None, min_length: int) -> None:
    """Refuse an empty, short, repetitive or well-known secret, naming the variable."""
    value = value or ""
    if not value:
        raise ConfigError(f"{env} is required but not set")
    if len(value) < min_length:
        raise ConfigError(f"{env} must be at least {min_length} characters")
    stripped = re.sub(r"[\d\W_]+$", "", value.lower())
    if len(set(value)) < 6 or value.lower() in _WEAK or stripped in _WEAK:
        raise ConfigError(
            f"{env} is too weak; generate one, e.g. "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def _check_rate(env: str, value: str) -> None:
    from limits import parse

    try:
        if not parse(value):
            raise ValueError(value)
    except ValueError:
        raise ConfigError(f"{env} must be a rate such as 120/hour, got {value!r}") from None


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxy_networks(value: str) -> list[IPNetwork] | None:
    """FORWARDED_ALLOW_IPS as gunicorn reads it: comma-separated addresses or networks (host
    bits must be zero), or `*` for any peer (None)."""
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    if "*" in items:
        return None
    try:
        return [ipaddress.ip_network(item) for item in items]
    except ValueError:
        raise ConfigError(
            "FORWARDED_ALLOW_IPS must be comma-separated addresses or networks "
            f"(e.g. 127.0.0.1,10.0.0.0/8) or *, got {value!r}"
        ) from None


def check_flower_auth(value: str) -> None:
    """FLOWER_BASIC_AUTH must be user:password with a real password."""
    user, sep, password = (value or "").partition(":")
    if not sep or not user:
        raise ConfigError("FLOWER_BASIC_AUTH must be user:password")
    _check_secret("FLOWER_BASIC_AUTH", password, min_length=12)


def same_redis_database(first: str, second: str) -> bool:
    """Whether two Redis URLs name the same database of the same server (localhost and
    127.0.0.1 are one host; the default port is 6379 and the default database 0)."""
    from urllib.parse import parse_qs, urlsplit

    def where(url: str) -> tuple[str, str, int, str] | None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            return None  # another broker (amqp://): never the items' Redis
        try:
            port = parts.port or 6379
        except ValueError:
            return None
        host = (parts.hostname or "localhost").lower()
        host = "127.0.0.1" if host in _LOOPBACK else host
        query = parse_qs(parts.query)
        if parts.scheme == "unix":
            host, port = parts.path, 0
            db = (query.get("db") or ["0"])[0]
        else:
            db = (query.get("db") or [parts.path.strip("/") or "0"])[0]
        return host, "tcp" if parts.scheme != "unix" else "unix", port, db.lstrip("0") or "0"

    found = where(first)
    return found is not None and found == where(second)


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _check_field(rules: Mapping[str, Any], value: Any) -> None:
    """ConfigError naming the variable when value breaks one of the rules beside its field."""
    env = rules["env"]
    message = rules["message"]
    if rules["positive"] and value <= 0:
        raise ConfigError(f"{env} must be positive")
    low, high = rules["minimum"], rules["maximum"]
    if (low is not None and value < low) or (high is not None and value > high):
        if message is None:
            message = (
                f"must be between {_number(low)} and {_number(high)}"
                if low is not None and high is not None
                else f"must be at least {_number(low)}"
                if low is not None
                else f"must be at most {_number(high)}"
            )
        raise ConfigError(f"{env} {message}")
    choices = rules["choices"]
    if choices is not None:
        chosen = value.upper() if rules["ignore_case"] else value
        if chosen not in choices:
            words = message or f"must be {', '.join(choices[:-1])} or {choices[-1]}"
            raise ConfigError(f"{env} {words}")
    pattern = rules["pattern"]
    if pattern is not None and not re.fullmatch(pattern, value or ""):
        raise ConfigError(f"{env} {message}")
    if rules["check"] is not None:
        rules["check"](env, value)


def _parse(env: str, type_: Any, raw: str) -> Any:
    kind = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    raw = raw.strip()
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{env} must be an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{env} must be a number, got {raw!r}") from None
    if kind == "bool":
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{env} must be true or false, got {raw!r}")
    return raw
