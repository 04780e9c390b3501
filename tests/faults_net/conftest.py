"""The service across network namespaces (tests/support/netstack.py), one for this package
(torn down once its tests are done, not at the end of `make test`).

Skipped with the reason where namespaces cannot be made (not root, no iproute2), unless
REQUIRE_NETNS=1 (as `.ci/run` sets it): then that is a failure."""

from __future__ import annotations

import os

import pytest

from tests.support.client import login
from tests.support.netjobs import ServerErrors
from tests.support.netns import unavailable_reason
from tests.support.wait import wait_for


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


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
def admin(net):
    return login(net, net.settings.admin_email, net.settings.admin_password)


@pytest.fixture(scope="package")
def server_errors():
    return ServerErrors()


@pytest.fixture(scope="package")
def user(net, admin, server_errors):
    created = admin.post(
        "/users", json={"name": "netuser", "email": "net@example.com", "password": "password-1"}
    )
    assert created.status_code == 201, created.text
    client = login(net, "net@example.com", "password-1")
    client.session.hooks["response"].append(server_errors.hook)
    return client


@pytest.fixture(autouse=True)
def only_503_with_retry_after(request, server_errors):
    """No 5xx but a 503 with Retry-After, in any test of the tier."""
    before = len(server_errors.seen)
    yield
    new = server_errors.seen[before:]
    bad = [s for s in new if s[0] != 503 or not s[2]]
    assert not bad, f"server errors other than 503 with Retry-After: {bad}"


@pytest.fixture(scope="package")
def receiver(net, user):
    """A webhook receiver on the test process's own address, subscribed for the user."""
    from tests.support.receiver import Receiver

    hooks = Receiver(host=net.network.gateway)
    created = user.post("/webhooks", json={"url": hooks.url})
    assert created.status_code == 201, created.text
    yield hooks
    hooks.close()


@pytest.fixture(autouse=True)
def healed(request):
    """Each test ends on a whole network: every cut healed, every host powered."""
    yield
    if "net" not in request.fixturenames:
        return
    net = request.getfixturevalue("net")
    for host in [net.data, net.api, *net.workers]:
        net.network.heal(host)
        net.network.unthrottle(host)
        if not host.powered:
            net.network.power_on(host)
    wait_for(net.all_workers_answer, timeout=120, what="every worker after healing")
