"""The API key service on in-memory fakes of its ports: made, checked, revoked, throttled."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from core.domain.accounts import Principal, Role
from core.domain.errors import Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized
from core.ports.limits import RateLimiter
from core.services.api_keys import ApiKeys
from core.services.auth import LoginThrottle
from tests.support.fakes import FakeApiKeys

START = datetime(2026, 12, 5, 6, 0, tzinfo=timezone.utc)


class CountingLimiter(RateLimiter):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def hit(self, amount: int, seconds: int, key: str) -> int:
        self.counts[key] = self.counts.get(key, 0) + 1
        return 0 if self.counts[key] <= amount else seconds

    def retry_after(self, amount: int, seconds: int, key: str) -> int:
        return seconds if self.counts.get(key, 0) >= amount else 0

    def reset(self, amount: int, seconds: int, key: str) -> None:
        self.counts.pop(key, None)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world():
    repo, clock = FakeApiKeys(), Clock()
    repo.roles = {1: "user", 2: "user", 9: "admin"}
    throttle = LoginThrottle(CountingLimiter(), 5, per_address=3, window=60)
    return repo, clock, ApiKeys(repo, throttle, clock=clock)


ALICE = Principal(1, Role.USER)
BOB = Principal(2, Role.USER)
ADMIN = Principal(9, Role.ADMIN)


def test_a_key_stands_for_its_owner_with_its_scopes_and_current_role(world):
    repo, _, keys = world
    made, text = keys.create(ALICE, "ci", ["jobs:read", "items"])
    secret = text[len("v2m_") + 12 + 1 :]  # the secret may hold "_" itself
    assert made.secret_hash == hashlib.sha256(secret.encode()).digest()
    caller = keys.authenticate(text, "10.0.0.1")
    assert (caller.user_id, caller.role, caller.scopes) == (1, Role.USER, made.scopes)
    assert caller.key_id == made.id and repo.finds == 1
    repo.roles[1] = "admin"  # promoted: the next request has the new role
    assert keys.authenticate(text).role is Role.ADMIN
    del repo.roles[1]  # deleted with the user
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        keys.authenticate(text)


def test_last_use_is_written_once_a_minute(world):
    repo, clock, keys = world
    _, text = keys.create(ALICE, "ci", ["items"])
    for _ in range(3):
        keys.authenticate(text)
    assert repo.touches == 1
    clock.now += timedelta(seconds=59)
    keys.authenticate(text)
    assert repo.touches == 1
    clock.now += timedelta(seconds=1)
    keys.authenticate(text)
    assert repo.touches == 2


def test_a_key_expires_at_its_time(world):
    _, clock, keys = world
    made, text = keys.create(ALICE, "ci", ["items"], expires_in=60)
    assert made.expires_at == START + timedelta(seconds=60)
    clock.now += timedelta(seconds=59)
    keys.authenticate(text)
    clock.now += timedelta(seconds=1)
    with pytest.raises(Unauthorized, match="API key expired"):
        keys.authenticate(text)


def test_wrong_and_malformed_keys_count_as_failed_logins_of_the_address(world):
    repo, _, keys = world
    _, text = keys.create(ALICE, "ci", ["items"])
    wrong = text[:-1] + ("A" if text[-1] != "A" else "B")
    with pytest.raises(Unauthorized, match="malformed"):
        keys.authenticate("v2m_nope", "10.0.0.2")
    assert repo.finds == 0  # a malformed key costs no lookup
    for _ in range(2):
        with pytest.raises(Unauthorized, match="invalid API key"):
            keys.authenticate(wrong, "10.0.0.2")
    with pytest.raises(TooManyRequests):
        keys.authenticate(text, "10.0.0.2")  # even the right key waits
    assert keys.authenticate(text, "10.0.0.3").user_id == 1  # another address does not


def test_revoking_is_for_the_owner_or_an_admin(world):
    _, _, keys = world
    made, text = keys.create(ALICE, "ci", ["items"])
    with pytest.raises(NotFound):
        keys.revoke(BOB, made.id)
    with pytest.raises(Forbidden):
        keys.list(BOB, user_id=1)
    assert [k.id for k in keys.list(ADMIN, user_id=1)] == [made.id]
    keys.revoke(ADMIN, made.id)
    with pytest.raises(Unauthorized):
        keys.authenticate(text)
    with pytest.raises(NotFound):
        keys.revoke(ALICE, made.id)


def test_what_a_key_may_make(world):
    _, _, keys = world
    no_account = Principal(1, Role.USER, scopes=frozenset({"items"}))
    with pytest.raises(Forbidden, match="lacks the scope 'account'"):
        keys.create(no_account, "x", ["items"])
    with pytest.raises(Forbidden, match="lacks the scope 'account'"):
        keys.list(no_account)
    account = Principal(1, Role.USER, scopes=frozenset({"account", "items"}))
    with pytest.raises(Forbidden, match="scopes it holds"):
        keys.create(account, "x", ["jobs:write"])
    assert keys.create(account, "x", ["items"])[0].scopes == {"items"}
    for name, scopes, expires in (
        ("", ["items"], None),
        ("x", [], None),
        ("x", ["root"], None),
        ("x", ["items"], 59),
        ("x", ["items"], 5 * 365 * 86400 + 1),
    ):
        with pytest.raises(InvalidInput):
            keys.create(ALICE, name, scopes, expires)


def test_at_most_fifty_keys_per_user(world):
    _, _, keys = world
    for n in range(50):
        keys.create(BOB, f"k{n}", ["items"])
    with pytest.raises(InvalidInput, match="at most 50"):
        keys.create(BOB, "one more", ["items"])
