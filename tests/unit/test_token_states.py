"""Token checks served from the shared token-state cache still see every revocation."""

import pytest

from core.domain.errors import Unauthorized
from core.services.auth import AuthService, Tokens
from core.services.users import UserService
from tests.support.fakes import SECRET, FakeTokenStates


@pytest.fixture
def cached(user_repo, passwords, admin):
    states = FakeTokenStates()
    auth = AuthService(user_repo, passwords, Tokens(SECRET, 60), states=states)
    users = UserService(user_repo, passwords, tokens_changed=auth.publish_state)
    return auth, users, states


def test_second_check_is_served_from_the_cache(cached, user_repo, admin):
    auth, _, states = cached
    token = auth.login("admin@example.com", "admin-password")["access_token"]
    auth.authenticate(token)
    user_repo.get = lambda user_id: pytest.fail("MySQL should not be asked again")
    assert auth.authenticate(token).user_id == admin.user_id


def test_password_change_revokes_despite_the_cache(cached, admin, alice):
    auth, users, _ = cached
    token = auth.login("alice@example.com", "alice-password")["access_token"]
    auth.authenticate(token)  # now cached
    users.update(
        alice, alice.user_id, {"password": "another-password", "current_password": "alice-password"}
    )
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


def test_delete_revokes_despite_the_cache(cached, admin, alice):
    auth, users, _ = cached
    token = auth.login("alice@example.com", "alice-password")["access_token"]
    auth.authenticate(token)
    users.delete(admin, alice.user_id)
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


def test_a_late_stale_offer_does_not_undo_a_revocation(cached, admin, alice, user_repo):
    auth, users, states = cached
    token = auth.login("alice@example.com", "alice-password")["access_token"]
    stale = (user_repo.get(alice.user_id).token_version, "user")
    users.update(
        alice, alice.user_id, {"password": "another-password", "current_password": "alice-password"}
    )
    states.offer(alice.user_id, stale)  # a reader that looked at MySQL before the change
    with pytest.raises(Unauthorized):
        auth.authenticate(token)
