"""MySQL or Redis going away: 503 JSON on the routes that need them, recovery without restart."""

from urllib.parse import urlsplit

import pytest

from api import create_app
from core.bootstrap import Container
from tests.support.openapi import (
    PROTOCOL_HEADERS,
    example_body,
    example_url,
    operations_documenting,
)
from tests.support.proxy import Outage


@pytest.fixture
def flaky(settings, container):
    """An app whose MySQL and Redis connections pass through proxies the test can cut."""
    mysql = Outage(settings.mysql_host, settings.mysql_port).up()
    redis_port = int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    redis = Outage("127.0.0.1", redis_port).up()
    flaky_settings = settings.with_overrides(
        mysql_port=mysql.port, redis_url=f"redis://127.0.0.1:{redis.port}/0"
    )
    app = create_app(container=Container(flaky_settings, passwords=container.passwords))
    yield app.test_client(), mysql, redis
    mysql.down()
    redis.down()


def login(client, settings):
    from tests.support.auth import basic

    return client.post("/login", headers=basic(settings.admin_email, settings.admin_password))


def test_mysql_down_is_503_and_recovers(flaky, settings):
    client, mysql, _ = flaky
    assert login(client, settings).status_code == 200
    mysql.down()
    response = login(client, settings)
    assert response.status_code == 503 and response.is_json
    body = response.get_json()
    assert body["code"] == "unavailable" and "mysql" in body["message"]
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    # Which service is down, and nothing an attacker could use: no host, port or driver text.
    assert ready.get_json() == {
        "status": "unavailable: mysql",
        "checks": {
            "mysql": "unavailable",
            "redis": "ok",
            "blob_store": "ok",
            "schema": "unavailable",
        },
    }
    mysql.up()
    assert login(client, settings).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_redis_down_is_503_and_recovers(flaky, settings):
    client, _, redis = flaky
    assert client.get("/").status_code == 200
    redis.down()
    down = client.get("/")
    assert down.status_code == 503 and "redis" in down.get_json()["message"]
    assert client.get("/readyz").get_json()["checks"]["redis"] != "ok"
    redis.up()
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("path,method", operations_documenting(503))
def test_every_operation_documenting_503_answers_it_while_mysql_and_redis_are_down(
    flaky, settings, path, method
):
    from tests.support.auth import basic

    client, mysql, redis = flaky
    token = login(client, settings).get_json()["access_token"]
    mysql.down()
    redis.down()
    headers = (
        basic(settings.admin_email, settings.admin_password)
        if path == "/login"
        else {"Authorization": f"Bearer {token}"}
    )
    headers.update(PROTOCOL_HEADERS)
    body = example_body(path, method)
    url = example_url(path)
    if path == "/links/{token}":  # a well-signed link, so the job has to be looked up
        url = urlsplit(
            client.application.extensions["vid2mp3"].links.sign("0" * 32, "0" * 24, 3600)[0]
        ).path
    response = client.open(
        url, method=method.upper(), headers=headers, **({"json": body} if body is not None else {})
    )
    assert response.status_code == 503, response.get_json()
    # readiness answers with its checks, the others with the error shape
    if path != "/readyz" and method != "head":
        assert response.get_json()["code"] == "unavailable" and response.headers["Retry-After"]
