"""Ways around the login throttle, tried over the API on real MariaDB and Redis: other
spellings of the address, many client addresses, concurrent guesses, forged X-Forwarded-For."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest

from api import create_app
from core.bootstrap import Container
from tests.support.auth import Auth, basic

_apps = itertools.count(1)
PASSWORD = "right-password-1"


def throttled_app(settings, container, **limits):
    """An app with its own limits and its own Redis keys (a fresh budget per test)."""
    tight = settings.with_overrides(
        redis_prefix=f"{settings.redis_prefix}throttle{next(_apps)}:",
        **{
            "login_max_failures": 3,
            "login_max_failures_per_account": 100,
            "login_max_failures_per_address": 100,
            **limits,
        },
    )
    app = create_app(container=Container(tight, passwords=container.passwords))
    app.config["TESTING"] = True
    return app.test_client()


def login(client, email, password, address, forwarded_for=None):
    headers = basic(email, password)
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return client.post("/login", headers=headers, environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def target(auth):
    """An account the tests guess at: (its email, its id)."""
    user, _ = auth.new_user(password=PASSWORD)
    return user["email"], user["id"]


# --- finding 3: one account, many spellings ----------------------------------------------


def spellings(email: str) -> list[str]:
    """Addresses MariaDB's utf8mb4_unicode_ci takes for `email`: case, full-width letters,
    accents, surrounding spaces."""
    local, _, domain = email.partition("@")
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in domain[:3])
    return [
        email.upper(),
        f"{local}@{full_width}{domain[3:]}",
        f"{local}@{domain[0]}\u0301{domain[1:]}",  # a combining acute accent
        f"{local}@\u00e9{domain[1:]}" if domain.startswith("e") else f"\u00e9{email}",
        f"  {email}\t",
        f"{local.upper()}@{domain.title()}",
    ]


def test_the_database_takes_every_spelling_for_the_account(container, target):
    """The premise: these spellings all find the one account."""
    email, user_id = target
    for spelling in spellings(email):
        found = container.user_repo.get_by_email(spelling.strip().lower())
        if found is None and "\u00e9" in spelling:
            continue  # é stands for an e only where the address has one
        assert found is not None and found.id == user_id, spelling


def test_other_spellings_get_no_more_guesses(settings, container, target):
    client = throttled_app(settings, container)
    email, _ = target
    for _ in range(3):
        assert login(client, email, "wrong-guess", "10.20.0.1").status_code == 401
    for spelling in spellings(email):
        # even the right password, under any spelling, waits: the account is throttled
        answer = login(client, spelling, PASSWORD, "10.20.0.1")
        assert answer.status_code == 429, (spelling, answer.get_json())


def test_guesses_spread_over_spellings_add_up(settings, container, target):
    client = throttled_app(settings, container)
    email, _ = target
    statuses = [
        login(client, spelling, "wrong-guess", "10.20.0.2").status_code
        for spelling in spellings(email)
    ]
    assert statuses[:3] == [401, 401, 401] and set(statuses[3:]) == {429}, statuses


def test_a_missing_account_answers_like_an_existing_one(settings, container):
    """Spellings of an address nobody has share a budget too, so a 429 tells nothing about
    whether the account exists."""
    client = throttled_app(settings, container)
    for _ in range(3):
        assert login(client, "ghost@example.com", "wrong-guess", "10.20.0.3").status_code == 401
    for spelling in ("GHOST@example.com", "ghost@ex\uff41mple.com", "ghost@\u00e9xample.com"):
        assert login(client, spelling, "wrong-guess", "10.20.0.3").status_code == 429, spelling


# --- finding 4: one account, many addresses ----------------------------------------------


def test_guesses_from_many_addresses_are_capped_per_account(settings, container, target):
    client = throttled_app(
        settings, container, login_max_failures=5, login_max_failures_per_account=10
    )
    email, _ = target
    # The owner signs in: their address is known from now on (and this first sign-in from a
    # new address was one of the 10 password checks the account allows such addresses).
    assert login(client, email, PASSWORD, "10.30.0.1").status_code == 200
    statuses = [
        login(client, email, f"guess-{n}", f"10.31.{n // 5}.{n % 5}").status_code
        for n in range(150)  # 30 addresses, 5 guesses each
    ]
    assert statuses.count(401) == 9 and statuses.count(429) == 141, statuses
    # the right password from yet another address is not even checked
    assert login(client, email, PASSWORD, "10.32.0.1").status_code == 429
    # the owner still signs in from where they signed in before
    assert login(client, email, PASSWORD, "10.30.0.1").status_code == 200


def test_concurrent_guesses_cannot_pass_the_cap_together(settings, container, target):
    client = throttled_app(
        settings, container, login_max_failures=5, login_max_failures_per_account=4
    )
    email, _ = target
    with ThreadPoolExecutor(max_workers=4) as pool:  # API_THREADS: what one process serves
        statuses = list(
            pool.map(
                lambda n: login(client, email, f"guess-{n}", f"10.33.0.{n}").status_code,
                range(24),
            )
        )
    assert statuses.count(401) == 4 and statuses.count(429) == 20, statuses


def test_a_new_password_makes_the_old_addresses_strangers(settings, container, target):
    """An attacker who signed in once with a stolen password is no owner after the change."""
    client = throttled_app(
        settings, container, login_max_failures=5, login_max_failures_per_account=5
    )
    email, user_id = target
    stolen = login(client, email, PASSWORD, "10.34.0.66")
    assert stolen.status_code == 200  # the attacker's address is now known to the account
    owner = login(client, email, PASSWORD, "10.34.0.1").get_json()["access_token"]
    changed = client.patch(
        f"/users/{user_id}",
        headers={"Authorization": f"Bearer {owner}"},
        json={"password": "a-new-password-1", "current_password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.34.0.1"},
    )
    assert changed.status_code == 200, changed.get_json()
    for n in range(3):  # the cap (5, two spent by the sign-ins above) runs out
        assert login(client, email, f"guess-{n}", f"10.35.0.{n}").status_code == 401
    assert login(client, email, "guess-x", "10.34.0.66").status_code == 429
    assert login(client, email, "a-new-password-1", "10.34.0.1").status_code == 200


def test_one_ipv6_prefix_is_one_client(settings, container):
    """Rotating through the addresses of one /64 does not buy more guesses."""
    client = throttled_app(settings, container, login_max_failures_per_address=3)
    statuses = [
        login(client, f"nobody{n}@example.com", "wrong-guess", f"2001:db8:1:2::{n:x}").status_code
        for n in range(1, 6)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    # another /64 is another client
    assert login(client, "nobody@example.com", "wrong-guess", "2001:db8:1:3::1").status_code == 401


# --- finding 5: X-Forwarded-For from a peer that is not a proxy --------------------------


def proxied_app(settings, container, allow):
    return throttled_app(
        settings,
        container,
        trusted_proxies=1,
        forwarded_allow_ips=allow,
        login_max_failures_per_address=3,
    )


def guesses(client, peer, forwarded_for):
    return [
        login(client, f"spray{n}@example.com", "wrong-guess", peer, forwarded_for(n)).status_code
        for n in range(6)
    ]


def test_a_forged_forwarded_for_from_a_stranger_buys_no_guesses(settings, container):
    client = proxied_app(settings, container, "127.0.0.1")
    statuses = guesses(client, "127.0.0.2", lambda n: f"198.51.100.{n}")
    assert statuses == [401, 401, 401, 429, 429, 429]


def test_the_trusted_proxy_forwards_each_clients_address(settings, container):
    client = proxied_app(settings, container, "127.0.0.1,10.40.0.0/16")
    for peer in ("127.0.0.1", "10.40.3.4", "::ffff:127.0.0.1"):
        assert guesses(client, peer, lambda n: f"203.0.113.{n}, 192.0.2.{n}") == [401] * 6, peer
    # ... and the client behind it is throttled by its own address
    assert guesses(client, "127.0.0.1", lambda n: "203.0.113.77") == [401] * 3 + [429] * 3


def test_any_peer_is_a_proxy_only_when_configured_so(settings, container):
    client = proxied_app(settings, container, "*")
    assert guesses(client, "192.0.2.9", lambda n: f"203.0.113.{100 + n}") == [401] * 6


def test_the_scheme_of_a_stranger_is_its_own(settings, container):
    """X-Forwarded-Proto from a stranger does not make the API believe it was HTTPS."""
    client = proxied_app(settings, container, "127.0.0.1")
    auth = Auth(client, settings)
    headers = {**auth.admin(), "X-Forwarded-Proto": "https", "Tus-Resumable": "1.0.0"}
    for peer, scheme in (("127.0.0.2", "http"), ("127.0.0.1", "https")):
        created = client.post(
            "/uploads/",
            headers={**headers, "Upload-Length": "10"},
            environ_base={"REMOTE_ADDR": peer},
        )
        assert created.status_code == 201, created.get_json()
        assert created.headers["Location"].startswith(f"{scheme}://"), created.headers
