"""Shared fixtures: settings for a throwaway database and key prefix, the app, a client, auth."""

from __future__ import annotations

import argon2
import pytest

from core.settings import Settings
from tests.support.auth import Auth
from tests.support.config import cleanup, migrate, service_env

pytest_plugins = ["tests.support.api_statuses", "tests.support.s3"]


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    data_dir = tmp_path_factory.mktemp("data")
    return Settings.from_env(service_env(DATA_DIR=data_dir), dotenv_path=None)


@pytest.fixture(scope="session")
def container(settings):
    """Real adapters on a throwaway database and Redis prefix, removed after the run."""
    from core.bootstrap import Container
    from core.services.auth import Passwords

    fast = Passwords(
        argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.ID)
    )
    built = Container(settings, passwords=fast)
    migrate(settings)
    yield built
    cleanup(built)


@pytest.fixture(scope="session")
def app(container):
    from api import create_app

    flask_app = create_app(container=container)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client, settings):
    return Auth(client, settings)
