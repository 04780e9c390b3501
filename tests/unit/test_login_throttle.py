import pytest

from core.domain import TooManyRequests, Unauthorized
from core.services.auth import AuthService, LoginThrottle, Tokens
from tests.unit.conftest import SECRET
from tests.unit.fakes import FakeLimiter


@pytest.fixture
def throttled(user_repo, passwords, admin):
    throttle = LoginThrottle(FakeLimiter(), per_account=3, per_address=5, window=60)
    return AuthService(user_repo, passwords, Tokens(SECRET, 60), throttle)


def fail(auth, email="admin@example.com", address="10.0.0.1"):
    with pytest.raises(Unauthorized):
        auth.login(email, "wrong-password", address)


def test_account_locks_after_repeated_failures_even_with_the_right_password(throttled):
    for _ in range(3):
        fail(throttled)
    with pytest.raises(TooManyRequests) as err:
        throttled.login("admin@example.com", "admin-password", "10.0.0.2")
    assert err.value.retry_after == 60


def test_address_locks_across_accounts(throttled):
    for n in range(5):
        fail(throttled, email=f"guess{n}@example.com")
    with pytest.raises(TooManyRequests):
        throttled.login("admin@example.com", "admin-password", "10.0.0.1")
    assert throttled.login("admin@example.com", "admin-password", "10.0.0.9")["access_token"]


def test_success_clears_the_account_counter(throttled):
    fail(throttled), fail(throttled)
    throttled.login("admin@example.com", "admin-password", "10.0.0.1")
    fail(throttled), fail(throttled)
    assert throttled.login("admin@example.com", "admin-password", "10.0.0.1")
