import pytest

from core.domain.errors import Forbidden, TooManyRequests, Unauthorized
from core.services.auth import AuthService, LoginThrottle, Tokens, address_key, identifier_key
from tests.support.fakes import SECRET, FakeKnownAddresses, FakeLimiter

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


# --- keys: one account however it is spelled, one client however it rotates -------------


@pytest.mark.parametrize(
    "spelling",
    [
        "USER@EXAMPLE.COM",
        "user@ex\uff41mple.com",  # full-width a
        "user@e\u0301xample.com",  # e + combining acute
        "user@\u00e9xample.com",  # precomposed é
        " user@example.com\t",
        "\uff35\uff53\uff45\uff52@example.com",  # full-width USER
    ],
)
def test_spellings_of_an_identifier_share_one_key(spelling):
    assert identifier_key(spelling) == identifier_key("user@example.com")


def test_distinct_identifiers_keep_distinct_keys():
    assert identifier_key("user@example.com") != identifier_key("user2@example.com")


@pytest.mark.parametrize(
    "address,key",
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        (None, "unknown"),
        ("not an address", "unknown"),
    ],
)
def test_addresses_are_counted_per_client(address, key):
    assert address_key(address) == key


# --- the cap per account across addresses -------------------------------------------------


@pytest.fixture
def capped(user_repo, passwords, admin, limiter):
    known = FakeKnownAddresses()
    throttle = LoginThrottle(
        limiter,
        per_account_and_address=3,
        per_address=50,
        window=WINDOW,
        per_account=4,
        known=known,
    )
    return AuthService(user_repo, passwords, Tokens(SECRET, 60), throttle), known


def test_guesses_from_new_addresses_stop_at_the_cap(capped):
    auth, _ = capped
    outcomes = []
    for n in range(8):
        try:
            auth.login("admin@example.com", "wrong-password", f"10.0.1.{n}")
            outcomes.append("in")
        except Unauthorized:
            outcomes.append(401)
        except TooManyRequests:
            outcomes.append(429)
    assert outcomes == [401] * 4 + [429] * 4
    with pytest.raises(TooManyRequests):  # not even checked: the right password waits too
        auth.login("admin@example.com", "admin-password", "10.0.1.99")


def test_the_owner_passes_the_cap_from_a_known_address(capped):
    auth, known = capped
    assert auth.login("admin@example.com", "admin-password", "10.0.2.1")["access_token"]
    assert known.knows(1, "10.0.2.1")
    for n in range(6):
        with pytest.raises((Unauthorized, TooManyRequests)):
            auth.login("admin@example.com", "wrong-password", f"10.0.3.{n}")
    assert auth.login("admin@example.com", "admin-password", "10.0.2.1")["access_token"]


def test_a_known_address_is_still_held_per_address(capped):
    auth, _ = capped
    auth.login("admin@example.com", "admin-password", "10.0.4.1")
    for _ in range(3):
        fail(auth, address="10.0.4.1")
    with pytest.raises(TooManyRequests):
        auth.login("admin@example.com", "admin-password", "10.0.4.1")


def test_a_password_change_forgets_all_but_the_owners_address(capped):
    auth, known = capped
    for address in ("10.0.5.1", "10.0.5.66"):
        auth.login("admin@example.com", "admin-password", address)
    auth.password_changed(1, "10.0.5.1")
    assert known.knows(1, "10.0.5.1") and not known.knows(1, "10.0.5.66")
    auth.password_changed(1, None)  # an admin's reset: no address is the owner's
    assert not known.knows(1, "10.0.5.1")


def test_re_authentication_counts_like_a_login(capped, user_repo):
    auth, _ = capped
    admin_user = user_repo.get(1)
    for _ in range(3):
        with pytest.raises(Forbidden):
            auth.check_password(admin_user, "wrong-password", "10.0.6.1")
    with pytest.raises(TooManyRequests):
        auth.check_password(admin_user, "admin-password", "10.0.6.1")
    auth.check_password(admin_user, "admin-password", "10.0.6.2")  # another address may
