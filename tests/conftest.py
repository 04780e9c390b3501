"""Shared fixtures: settings for a throwaway database and key prefix, the app, a client, auth."""

from __future__ import annotations

import base64
import itertools

import argon2
import pytest

from core.settings import Settings
from tests.support.config import drop_database, service_env

pytest_plugins = ["tests.support.api_statuses", "tests.support.s3"]

_counter = itertools.count(1)


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


def migrate(settings: Settings) -> None:
    """`python -m core.migrate` in this process: the schema and the admin account."""
    from core.migrate import run

    failures: list[str] = []
    assert run(settings, say=lambda line: None, fail=failures.append) == 0, failures


def cleanup(built) -> None:
    """Drop the run's database and delete only the keys under the run's prefixes."""
    from core.adapters.redis.client import redis_client

    drop_database(built.settings)
    settings = built.settings
    for url, prefix in (
        (settings.redis_url, settings.redis_prefix),
        (settings.celery_broker_url, settings.celery_key_prefix),
    ):
        if not prefix:
            continue
        client = redis_client(url)
        for key in client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=500):
            client.delete(key)
        client.close()


@pytest.fixture(scope="session")
def app(container):
    from api import create_app

    flask_app = create_app(container=container)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


def basic(email: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


class Auth:
    """Logs in and creates users through the API, as a client would."""

    def __init__(self, client, settings):
        self.client = client
        self.settings = settings

    def token(self, email: str, password: str) -> str:
        response = self.client.post("/login", headers=basic(email, password))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    def headers(self, email: str, password: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(email, password)}"}

    def admin(self) -> dict[str, str]:
        return self.headers(self.settings.admin_email, self.settings.admin_password)

    def new_user(self, **fields) -> tuple[dict, dict[str, str]]:
        """Create a user as admin; return its JSON and Bearer headers."""
        n = next(_counter)
        data = {
            "name": f"user{n}",
            "email": f"user{n}@example.com",
            "password": "password-1",
            **fields,
        }
        response = self.client.post("/users", json=data, headers=self.admin())
        assert response.status_code == 201, response.get_json()
        return response.get_json(), self.headers(data["email"], data["password"])


@pytest.fixture
def auth(client, settings):
    return Auth(client, settings)
