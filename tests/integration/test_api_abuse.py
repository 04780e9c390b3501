"""Brute force, CORS and ownership over the API, on real Redis and MariaDB."""

import pytest

from api import create_app
from core.bootstrap import Container
from tests.support.auth import basic


@pytest.fixture
def strict_client(settings, container):
    """An app with a tight login limit and CORS for one origin."""
    tight = settings.with_overrides(
        login_max_failures=3,
        login_max_failures_per_address=100,
        cors_origins="https://app.example.com",
        redis_prefix=settings.redis_prefix + "strict:",
    )
    return create_app(container=Container(tight, passwords=container.passwords)).test_client()


def test_brute_force_gets_429_with_retry_after(strict_client, auth):
    auth.new_user(email="target@example.com", password="right-password")
    for _ in range(3):
        assert (
            strict_client.post(
                "/login",
                headers=basic("target@example.com", "guess-guess"),
                environ_base={"REMOTE_ADDR": "10.1.1.1"},
            ).status_code
            == 401
        )
    blocked = strict_client.post(
        "/login",
        headers=basic("target@example.com", "right-password"),
        environ_base={"REMOTE_ADDR": "10.1.1.1"},
    )
    assert blocked.status_code == 429 and blocked.get_json()["code"] == "too_many_requests"
    assert 0 < int(blocked.headers["Retry-After"]) <= 300


def test_brute_force_cannot_lock_the_owner_out(strict_client, auth):
    """Failures from an attacker's address never stop the owner logging in from theirs."""
    auth.new_user(email="owner@example.com", password="right-password")
    for _ in range(6):
        assert strict_client.post(
            "/login",
            headers=basic("owner@example.com", "guess-guess"),
            environ_base={"REMOTE_ADDR": "10.1.1.9"},
        ).status_code in (401, 429)
    owner = strict_client.post(
        "/login",
        headers=basic("owner@example.com", "right-password"),
        environ_base={"REMOTE_ADDR": "10.1.1.10"},
    )
    assert owner.status_code == 200 and owner.get_json()["access_token"]


def test_cors_only_for_configured_origins(strict_client, client):
    allowed = strict_client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = strict_client.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = strict_client.options(
        "/items/k",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT"},
    )
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    default = client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in default.headers  # off unless configured


def proxied_app(settings, container, trusted_proxies):
    """An app behind `trusted_proxies` proxies, blocking an address after 2 failed logins."""
    limited = settings.with_overrides(
        trusted_proxies=trusted_proxies,
        forwarded_allow_ips="10.0.0.0/24",  # the proxy below connects from 10.0.0.1
        login_max_failures=100,
        login_max_failures_per_address=2,
        redis_prefix=f"{settings.redis_prefix}proxies{trusted_proxies}:",
    )
    return create_app(container=Container(limited, passwords=container.passwords)).test_client()


def failed_login(client, n, forwarded_for):
    return client.post(
        "/login",
        headers={
            **basic(f"nobody{n}@example.com", "wrong-password"),
            "X-Forwarded-For": forwarded_for,
        },
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    ).status_code


def test_forwarded_addresses_count_only_behind_trusted_proxies(settings, container):
    behind_proxy = proxied_app(settings, container, trusted_proxies=1)
    assert [failed_login(behind_proxy, n, "203.0.113.5") for n in range(3)] == [401, 401, 429]
    # another client behind the same proxy is not blocked with the first one
    assert failed_login(behind_proxy, 3, "203.0.113.6") == 401

    direct = proxied_app(settings, container, trusted_proxies=0)
    # without trusted proxies the header is the client's word: forging it dodges nothing
    assert [failed_login(direct, n, f"198.51.100.{n}") for n in range(3)] == [401, 401, 429]
