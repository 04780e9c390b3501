"""Token checks when the token-state cache (Redis) is down: MySQL answers, revocations hold."""

from __future__ import annotations

import pytest
import redis as redis_lib

from api import create_app
from core.bootstrap import Container
from tests.support.auth import Auth
from tests.support.servers import RedisServer


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(str(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_on(private_redis, settings, container):
    """The app with its Redis (token-state cache, throttle, items) on a server the test stops."""
    built = Container(
        settings.with_overrides(redis_url=private_redis.url(0)), passwords=container.passwords
    )
    app = create_app(container=built)
    app.config["TESTING"] = True
    return app.test_client(), built


def cached_state(server: RedisServer, settings, user_id: int) -> bytes | None:
    client = redis_lib.Redis(port=server.port)
    try:
        return client.get(f"{settings.redis_prefix}token-state:{user_id}")
    finally:
        client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_checks_read_mysql_while_the_cache_is_down(app_on, private_redis, settings):
    client, _ = app_on
    user, headers = Auth(client, settings).new_user(password="password-1")
    assert client.get("/jobs", headers=headers).status_code == 200
    assert cached_state(private_redis, settings, user["id"]) is not None  # served from Redis next

    private_redis.stop()
    assert client.get("/jobs", headers=headers).status_code == 200  # still signed in

    # Password checks are counted in Redis: without it none is made (fails closed).
    change = {"password": "password-2", "current_password": "password-1"}
    refused = client.patch(f"/users/{user['id']}", json=change, headers=headers)
    assert refused.status_code == 503, refused.get_json()
    assert client.get("/jobs", headers=headers).status_code == 200  # nothing changed

    private_redis.start()  # back, and empty
    changed = client.patch(f"/users/{user['id']}", json=change, headers=headers)
    assert changed.status_code == 200, changed.get_json()
    revoked = client.get("/jobs", headers=headers)
    assert revoked.status_code == 401 and revoked.get_json()["code"]
    fresh = Auth(client, settings).token(user["email"], "password-2")
    assert client.get("/jobs", headers=bearer(fresh)).status_code == 200
    assert cached_state(private_redis, settings, user["id"]) is not None


def test_a_deleted_user_is_refused_while_the_cache_is_down(app_on, private_redis, settings):
    client, _ = app_on
    auth = Auth(client, settings)
    admin_headers = auth.admin()
    user, headers = auth.new_user()
    assert client.get("/jobs", headers=headers).status_code == 200  # state now cached

    private_redis.stop()
    assert client.delete(f"/users/{user['id']}", headers=admin_headers).status_code == 204
    refused = client.get("/jobs", headers=headers)
    assert refused.status_code == 401
    assert client.get("/jobs", headers=admin_headers).status_code == 200
