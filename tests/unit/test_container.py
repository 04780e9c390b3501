"""The composition root: nothing connects at construction, and overrides must name a component."""

from functools import cached_property
from inspect import getsource

import pytest

from core.bootstrap import Container
from core.settings import Settings
from tests.support.fakes import Clock, FakeQueue, fake_adapters

SETTINGS = Settings.from_env(
    {
        "JWT_SECRET": "unit-test-jwt-secret-0123456789abcdef",
        "ADMIN_EMAIL": "admin@example.com",
        "ADMIN_PASSWORD": "correct horse battery",
        "MYSQL_HOST": "127.0.0.1",
        "MYSQL_PORT": "1",
    },
    dotenv_path=None,
)


def test_an_override_replaces_the_component():
    queue = FakeQueue()
    assert Container(SETTINGS, queue=queue).queue is queue


def test_a_misspelt_override_is_refused():
    with pytest.raises(TypeError, match="quue"):
        Container(SETTINGS, quue=FakeQueue())


def test_building_the_container_opens_no_connection():
    built = Container(SETTINGS)  # MySQL on port 1 would refuse; nothing tries yet
    assert "db" not in built.__dict__ and "redis" not in built.__dict__


def test_a_worker_process_has_one_celery_app_the_containers():
    """The app a worker consumes with is the one its tasks enqueue with: no second app."""
    from celery import current_app

    import tasks

    previous = current_app._get_current_object()
    try:
        app = tasks.create_worker_app(SETTINGS)
        services = tasks.container()
        assert app is services.celery and services.queue.app is app
        assert current_app._get_current_object() is app  # the tasks bind to it
    finally:
        tasks.use_container(None)
        previous.set_default()


def test_the_unit_tier_fakes_every_adapter_the_container_builds(tmp_path):
    """A component built from core.adapters that the unit tier leaves real would reach MySQL,
    Redis or a broker from a unit test: each one has its fake (or is unplugged)."""
    built_from_adapters = {
        name
        for name, member in vars(Container).items()
        if isinstance(member, cached_property) and "core.adapters" in getsource(member.func)
    }
    assert len(built_from_adapters) > 20
    assert built_from_adapters - set(fake_adapters(tmp_path, Clock())) == set()
