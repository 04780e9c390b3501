"""Celery tasks: thin wrappers that take a job id, call a service and own the retries."""

from __future__ import annotations

from celery import Celery

from core.bootstrap import Container
from core.settings import Settings

_container: Container | None = None


def container() -> Container:
    """The services of this worker process (built lazily, so after the fork)."""
    global _container
    if _container is None:
        _container = Container(Settings.from_env())
    return _container


def use_container(new: Container | None) -> Container | None:
    """Make new the container the tasks of this process use (a worker at start; the unit tier
    passes one built on fakes); returns the one it replaces, None if none was built yet."""
    global _container
    previous, _container = _container, new
    return previous


def create_worker_app(settings: Settings | None = None) -> Celery:
    """The container's Celery app, with every task registered, for a worker or beat process:
    the one app of the process, which the tasks also enqueue with."""
    use_container(Container(settings or Settings.from_env()))
    app = container().celery
    app.set_default()
    from tasks import convert, fetch, notify, sweep, uploads, webhooks  # noqa: F401  registers them

    return app


def backoff(retries: int, base: float, cap: float = 600.0) -> float:
    """Exponential delay for the n-th retry, capped."""
    return min(cap, base * (2**retries))
