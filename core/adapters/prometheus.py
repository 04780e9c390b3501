"""The Metrics port on prometheus_client, the broker's queue lengths, and the registries served
by the API's /metrics and by each worker's metrics port.

Import this module only after core.observability.use_metrics_dir has run in the parent
process (gunicorn's master, the Celery worker's main process): prometheus_client picks its
multiprocess mode when it is first imported, and every forked child then writes its samples
into a file of its own in that directory, which a scrape adds up.
"""

from __future__ import annotations

import errno
import logging
from typing import Any, Callable, Iterable, Iterator, get_args

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from core.observability import metrics_dir_in_use, metrics_port_taken
from core.ports.metrics import EmailOutcome, JobOutcome, Metrics, WebhookOutcome

log = logging.getLogger(__name__)

JOB_OUTCOMES: tuple[str, ...] = get_args(JobOutcome)
EMAIL_OUTCOMES: tuple[str, ...] = get_args(EmailOutcome)
WEBHOOK_OUTCOMES: tuple[str, ...] = get_args(WebhookOutcome)
# Every label value comes from a closed set: a value from a request (a made-up method) or a
# new outcome becomes "other", so no client can add series to /metrics.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
OTHER = "other"


def closed(value: str, allowed: tuple[str, ...]) -> str:
    """value when it is one of allowed, else "other"."""
    return value if value in allowed else OTHER


def status_label(status: int) -> str:
    return str(status) if isinstance(status, int) and 100 <= status <= 599 else OTHER


JOBS = Counter("vid2mp3_jobs_total", "Conversions that ended, by outcome", ["outcome"])
CONVERSION_SECONDS = Histogram(
    "vid2mp3_conversion_seconds",
    "Seconds a convert task took for a job that succeeded",
    buckets=(1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 300, 600, 1200, 1800),
)
UPLOAD_BYTES = Counter("vid2mp3_upload_bytes_total", "Bytes of video uploads accepted")
EMAILS = Counter("vid2mp3_emails_total", "Email delivery attempts, by outcome", ["outcome"])
WEBHOOKS = Counter("vid2mp3_webhooks_total", "Webhook delivery attempts, by outcome", ["outcome"])
HTTP_REQUESTS = Counter(
    "vid2mp3_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "vid2mp3_http_request_duration_seconds",
    "Seconds to produce a response (a streamed body not included), by route",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)


class PrometheusMetrics(Metrics):
    def __init__(self) -> None:
        for outcome in JOB_OUTCOMES:  # every series exists from the start, at 0
            JOBS.labels(outcome)
        for outcome in EMAIL_OUTCOMES:
            EMAILS.labels(outcome)
        for outcome in WEBHOOK_OUTCOMES:
            WEBHOOKS.labels(outcome)

    def upload_received(self, size: int) -> None:
        UPLOAD_BYTES.inc(size)

    def job_finished(self, outcome: JobOutcome, seconds: float | None = None) -> None:
        JOBS.labels(closed(outcome, JOB_OUTCOMES)).inc()
        if seconds is not None and outcome == "succeeded":
            CONVERSION_SECONDS.observe(seconds)

    def email(self, outcome: EmailOutcome) -> None:
        EMAILS.labels(closed(outcome, EMAIL_OUTCOMES)).inc()

    def webhook(self, outcome: WebhookOutcome) -> None:
        WEBHOOKS.labels(closed(outcome, WEBHOOK_OUTCOMES)).inc()

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = closed(method, HTTP_METHODS)
        HTTP_REQUESTS.labels(method, route, status_label(status)).inc()
        HTTP_SECONDS.labels(method, route).observe(seconds)


# kombu's Redis transport keeps priorities 3, 6 and 9 of a queue in lists beside the queue's own.
_PRIORITY_SEPARATOR, _PRIORITY_STEPS = "\x06\x16", (3, 6, 9)


class BrokerQueueCollector:
    """vid2mp3_queue_length{queue}: the tasks waiting in each Celery queue, read from the
    broker (Redis LLEN, honouring CELERY_KEY_PREFIX) at scrape time."""

    def __init__(self, redis_factory: Callable[[], Any], key_prefix: str, queues: Iterable[str]):
        self._redis_factory = redis_factory
        self._redis: Any = None
        self.key_prefix = key_prefix
        self.queues = tuple(queues)

    def _keys(self, queue: str) -> list[str]:
        names = [queue] + [f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS]
        return [self.key_prefix + name for name in names]

    def collect(self) -> Iterator[Metric]:
        lengths = GaugeMetricFamily(
            "vid2mp3_queue_length",
            "Tasks waiting in a Celery queue (not yet taken by a worker)",
            labels=["queue"],
        )
        up = GaugeMetricFamily("vid2mp3_broker_up", "1 when the broker answered this scrape")
        try:
            if self._redis is None:
                self._redis = self._redis_factory()
            pipe = self._redis.pipeline(transaction=False)
            for queue in self.queues:
                for key in self._keys(queue):
                    pipe.llen(key)
            counts = iter(pipe.execute())
            for queue in self.queues:
                lengths.add_metric([queue], sum(next(counts) for _ in self._keys(queue)))
            up.add_metric([], 1)
        except Exception as exc:  # a scrape reports the outage, it never fails
            log.warning("queue lengths unavailable: %s", exc)
            up.add_metric([], 0)
        yield lengths
        yield up


class WorkerCollector:
    """vid2mp3_worker_up{queue,worker} 1, from the worker's main process while it runs."""

    def __init__(self, queue: str, worker: str, concurrency: int):
        self.queue, self.worker, self.concurrency = queue, worker, concurrency

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "vid2mp3_worker_up", "A Celery worker serving this queue", labels=["queue", "worker"]
        )
        up.add_metric([self.queue, self.worker], 1)
        slots = GaugeMetricFamily(
            "vid2mp3_worker_concurrency",
            "Pool processes of a Celery worker",
            labels=["queue", "worker"],
        )
        slots.add_metric([self.queue, self.worker], self.concurrency)
        yield up
        yield slots


def registry(*extra: Any) -> CollectorRegistry:
    """This process's samples (every forked child's, in multiprocess mode) plus `extra`."""
    built = CollectorRegistry()
    path = metrics_dir_in_use()
    if path:
        MultiProcessCollector(built, path=path)  # type: ignore[no-untyped-call]
    else:
        built.register(REGISTRY)  # a registry is a collector
    for collector in extra:
        built.register(collector)
    return built


def serve(port: int, host: str, served: CollectorRegistry) -> None:
    """Serve `served` on http://host:port/metrics from a daemon thread of this process;
    ConfigError when something else listens there (its numbers must not pass for ours)."""
    try:
        start_http_server(port, addr=host, registry=served)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise metrics_port_taken(port, host) from None
    log.info("metrics on http://%s:%d/metrics", host, port)
