"""The service across network namespaces (tests/support/netstack.py), one per session.

Skipped with the reason where namespaces cannot be made (not root, no iproute2), unless
REQUIRE_NETNS=1 (as `.ci/run` sets it): then that is a failure."""

from __future__ import annotations

import os

import pytest

from tests.support.client import login
from tests.support.netns import unavailable_reason


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    mine = [item for item in items if str(item.fspath).startswith(here)]
    if not mine:
        return
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("REQUIRE_NETNS") == "1":
        raise pytest.UsageError(f"REQUIRE_NETNS=1 but the network tier cannot run: {reason}")
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=f"network namespaces unavailable: {reason}"))


@pytest.fixture(scope="session")
def net(tmp_path_factory):
    from tests.support.netstack import running_netstack

    env = {
        "LEASE_SECONDS": "6",
        "SWEEP_INTERVAL_SECONDS": "1",
        "SWEEP_AFTER_SECONDS": "8",
        "NOTIFY_RETRY_BASE_SECONDS": "0.5",
        "WEBHOOK_RETRY_BASE_SECONDS": "1",
    }
    with running_netstack(tmp_path_factory.mktemp("net"), env) as stack:
        yield stack


@pytest.fixture(scope="session")
def admin(net):
    return login(net, net.settings.admin_email, net.settings.admin_password)


@pytest.fixture(scope="session")
def user(net, admin):
    created = admin.post(
        "/users", json={"name": "netuser", "email": "net@example.com", "password": "password-1"}
    )
    assert created.status_code == 201, created.text
    return login(net, "net@example.com", "password-1")
