import pytest

from core.domain import TooManyRequests, Unauthorized
from core.services.auth import AuthService, LoginThrottle, Tokens
from tests.unit.conftest import SECRET
from tests.unit.fakes import FakeLimiter

WINDOW = 60


@pytest.fixture
def limiter():
    return FakeLimiter()


@pytest.fixture
def throttled(user_repo, passwords, admin, limiter):
    throttle = LoginThrottle(limiter, per_account_and_address=3, per_address=5, window=WINDOW)
    return AuthService(user_repo, passwords, Tokens(SECRET, 60), throttle)


def fail(auth, email="admin@example.com", address="10.0.0.1"):
    with pytest.raises(Unauthorized):
        auth.login(email, "wrong-password", address)


def test_attacker_is_throttled_on_the_account_from_their_address(throttled, limiter):
    for _ in range(3):
        fail(throttled)
    with pytest.raises(TooManyRequests) as err:
        throttled.login("admin@example.com", "admin-password", "10.0.0.1")
    assert err.value.retry_after == WINDOW
    limiter.now += WINDOW / 2
    with pytest.raises(TooManyRequests) as err:
        throttled.login("admin@example.com", "admin-password", "10.0.0.1")
    assert err.value.retry_after == WINDOW / 2


def test_the_owner_still_logs_in_from_another_address(throttled):
    for _ in range(10):
        with pytest.raises((Unauthorized, TooManyRequests)):
            throttled.login("admin@example.com", "wrong-password", "10.0.0.1")
    for address in ("10.0.0.2", "192.0.2.7", None):
        assert throttled.login("admin@example.com", "admin-password", address)["access_token"]


def test_the_window_ends(throttled, limiter):
    for _ in range(3):
        fail(throttled)
    limiter.now += WINDOW + 1
    assert throttled.login("admin@example.com", "admin-password", "10.0.0.1")["access_token"]


def test_address_locks_across_accounts(throttled):
    for n in range(5):
        fail(throttled, email=f"guess{n}@example.com")
    with pytest.raises(TooManyRequests):
        throttled.login("admin@example.com", "admin-password", "10.0.0.1")
    assert throttled.login("admin@example.com", "admin-password", "10.0.0.9")["access_token"]


def test_success_clears_the_account_counter_for_that_address(throttled):
    fail(throttled), fail(throttled)
    throttled.login("admin@example.com", "admin-password", "10.0.0.1")
    fail(throttled), fail(throttled)
    assert throttled.login("admin@example.com", "admin-password", "10.0.0.1")
