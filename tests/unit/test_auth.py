import time

import jwt
import pytest

from core.domain.errors import Unauthorized
from tests.support.fakes import SECRET


def login_token(auth, email="admin@example.com", password="admin-password"):
    return auth.login(email, password)["access_token"]


def test_login_issues_bearer_token_with_claims(auth, admin):
    issued = auth.login("Admin@Example.com ", "admin-password")
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600
    claims = auth.claims(issued["access_token"])
    assert claims["sub"] == str(admin.user_id) and claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    "email,password",
    [
        ("admin@example.com", "wrong-password"),
        ("nobody@example.com", "admin-password"),
        ("", ""),
        ("admin@example.com", ""),
    ],
)
def test_bad_credentials_are_refused_alike(auth, admin, email, password):
    with pytest.raises(Unauthorized) as err:
        auth.login(email, password)
    assert err.value.message == "invalid email or password"


def test_password_is_stored_as_argon2id_hash(user_repo, admin):
    stored = user_repo.get(admin.user_id).password_hash
    assert stored.startswith("$argon2id$") and "admin-password" not in stored


def forge(claims, key=SECRET, algorithm="HS256"):
    return jwt.encode(claims, key, algorithm=algorithm)


def fresh_claims(user_id, **extra):
    now = int(time.time())
    return {"sub": str(user_id), "role": "admin", "ver": 0, "iat": now, "exp": now + 60, **extra}


def test_expired_token_is_refused(auth, admin):
    token = forge(fresh_claims(admin.user_id, exp=int(time.time()) - 5))
    with pytest.raises(Unauthorized, match="expired"):
        auth.authenticate(token)


def test_forged_signature_is_refused(auth, admin):
    with pytest.raises(Unauthorized):
        auth.authenticate(forge(fresh_claims(admin.user_id), key="another-secret-" + "z" * 30))


def test_alg_none_is_refused(auth, admin):
    token = jwt.encode(fresh_claims(admin.user_id), None, algorithm="none")
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


def test_other_algorithm_is_refused(auth, admin):
    with pytest.raises(Unauthorized):
        auth.authenticate(forge(fresh_claims(admin.user_id), key=SECRET * 2, algorithm="HS512"))


def test_token_without_exp_is_refused(auth, admin):
    claims = fresh_claims(admin.user_id)
    del claims["exp"]
    with pytest.raises(Unauthorized):
        auth.authenticate(forge(claims))


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "eyJ.eyJ.sig"])
def test_malformed_tokens_are_refused(auth, token):
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


def test_deleted_users_token_is_refused(auth, users, admin, alice):
    token = login_token(auth, "alice@example.com", "alice-password")
    users.delete(admin, alice.user_id)
    with pytest.raises(Unauthorized):
        auth.authenticate(token)


def test_password_change_retires_earlier_tokens(auth, users, alice):
    old = login_token(auth, "alice@example.com", "alice-password")
    users.update(
        alice,
        alice.user_id,
        {"password": "new-password-1", "current_password": "alice-password"},
    )
    with pytest.raises(Unauthorized, match="revoked"):
        auth.authenticate(old)
    new = login_token(auth, "alice@example.com", "new-password-1")
    assert auth.authenticate(new).user_id == alice.user_id


def test_role_claim_must_match_the_account(auth, alice):
    with pytest.raises(Unauthorized):
        auth.authenticate(forge({**fresh_claims(alice.user_id), "role": "admin"}))
