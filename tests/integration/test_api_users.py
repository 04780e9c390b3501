"""The users and login routes over the Flask test client, on real MariaDB and Redis."""

import time

import jwt
import pytest

from tests.support.auth import basic


def test_login_returns_a_bearer_token(client, settings):
    response = client.post("/login", headers=basic(settings.admin_email, settings.admin_password))
    body = response.get_json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == settings.jwt_ttl_seconds
    claims = jwt.decode(body["access_token"], settings.jwt_secret, algorithms=["HS256"])
    assert {"sub", "role", "iat", "exp"} <= set(claims) and claims["role"] == "admin"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!notbase64"},
        basic("admin@example.com", "wrong-password"),
        basic("ghost@example.com", "whatever1"),
    ],
)
def test_bad_logins_are_401_json(client, headers):
    response = client.post("/login", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_validate_returns_claims_or_401(client, auth, settings):
    headers = auth.admin()
    ok = client.post("/validate", headers=headers)
    assert ok.status_code == 200 and ok.get_json()["role"] == "admin"
    now = int(time.time())
    expired = jwt.encode(
        {"sub": "1", "role": "admin", "iat": now - 100, "exp": now - 10},
        settings.jwt_secret,
        algorithm="HS256",
    )
    none_alg = jwt.encode(
        {"sub": "1", "role": "admin", "iat": now, "exp": now + 60}, None, algorithm="none"
    )
    forged = jwt.encode(
        {"sub": "1", "role": "admin", "iat": now, "exp": now + 60},
        "not-the-secret-" + "q" * 30,
        algorithm="HS256",
    )
    for token in (expired, none_alg, forged, "garbage"):
        response = client.post("/validate", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
    assert client.post("/validate").status_code == 401


def test_create_find_update_delete_user(client, auth):
    admin = auth.admin()
    created = client.post(
        "/users",
        headers=admin,
        json={
            "name": "Zoë O'Neil",
            "email": "zoe@example.com",
            "password": "zoe-password",
            "phone": "+33 1 23 45 67 89",
        },
    )
    assert created.status_code == 201
    user = created.get_json()
    assert set(user) == {
        "id",
        "name",
        "email",
        "phone",
        "role",
        "since",
        "pending_email",
        "email_confirmed",
    }
    assert "password" not in created.get_data(as_text=True)
    assert "argon2" not in created.get_data(as_text=True)

    zoe = auth.headers("zoe@example.com", "zoe-password")
    found = client.get("/user/Zoë O'Neil", headers=zoe)
    assert found.status_code == 200
    assert found.get_json() == {
        "name": "Zoë O'Neil",
        "phone": "+33 1 23 45 67 89",
        "since": user["since"],
    }
    patched = client.patch(f"/users/{user['id']}", headers=zoe, json={"phone": "+33 9 99"})
    assert patched.status_code == 200 and patched.get_json()["phone"] == "+33 9 99"
    assert client.delete(f"/users/{user['id']}", headers=zoe).status_code == 204
    assert client.get("/user/Zoë O'Neil", headers=admin).status_code == 404
    # the deleted user's token no longer works
    assert client.get(f"/users/{user['id']}", headers=zoe).status_code == 401


def test_conflicts_and_validation(client, auth, container):
    admin = auth.admin()
    user, _ = auth.new_user()
    taken = client.post(
        "/users",
        headers=admin,
        json={"name": user["name"], "email": "fresh@example.com", "password": "password-1"},
    )
    assert taken.status_code == 409 and taken.get_json()["code"] == "conflict"
    invalid = client.post(
        "/users",
        headers=admin,
        json={"name": "Robert'); DROP TABLE users;--", "email": "nope", "password": "x"},
    )
    assert invalid.status_code == 422
    assert set(invalid.get_json()["errors"]["json"]) == {"name", "email", "password"}
    unknown = client.post(
        "/users",
        headers=admin,
        json={"name": "ok", "email": "ok@example.com", "password": "password-1", "admin": True},
    )
    assert unknown.status_code == 422 and "admin" in unknown.get_json()["errors"]["json"]
    # the users table survived the metacharacters, and none of the refused users is in it
    assert client.get("/users", headers=admin).status_code == 200
    for email in ("fresh@example.com", "nope", "ok@example.com"):
        assert container.user_repo.get_by_email(email) is None


def test_signup_is_closed_by_default(client, auth, container):
    anonymous = client.post(
        "/users", json={"name": "anon", "email": "anon@example.com", "password": "password-1"}
    )
    assert anonymous.status_code == 401
    _, user = auth.new_user()
    as_user = client.post(
        "/users",
        headers=user,
        json={"name": "anon", "email": "anon@example.com", "password": "password-1"},
    )
    assert as_user.status_code == 403
    assert container.user_repo.get_by_email("anon@example.com") is None


def test_users_reach_only_themselves(client, auth):
    alice, alice_h = auth.new_user()
    bob, bob_h = auth.new_user()
    for method in (client.get, client.delete):
        assert method(f"/users/{bob['id']}", headers=alice_h).status_code == 404
    assert (
        client.patch(f"/users/{bob['id']}", headers=alice_h, json={"phone": "+1 555"}).status_code
        == 404
    )
    assert client.get("/users", headers=alice_h).status_code == 403
    assert (
        client.patch(f"/users/{alice['id']}", headers=alice_h, json={"role": "admin"}).status_code
        == 403
    )
    assert client.get(f"/users/{bob['id']}", headers=auth.admin()).status_code == 200


def test_list_users_is_paginated(client, auth):
    auth.new_user(), auth.new_user()
    page = client.get("/users?page=1&per_page=2", headers=auth.admin()).get_json()
    assert page["page"] == 1 and page["per_page"] == 2 and len(page["items"]) == 2
    assert page["total"] >= 3
    assert client.get("/users?per_page=1000", headers=auth.admin()).status_code == 422


def test_password_change_retires_old_tokens(client, auth):
    user, headers = auth.new_user(email="rotate@example.com")
    changed = client.patch(
        f"/users/{user['id']}",
        headers=headers,
        json={"password": "brand-new-pass", "current_password": "password-1"},
    )
    assert changed.status_code == 200, changed.get_json()
    assert client.post("/validate", headers=headers).status_code == 401
    assert auth.token("rotate@example.com", "brand-new-pass")


def test_a_refused_update_changes_nothing(client, auth, container):
    user, headers = auth.new_user()
    other, _ = auth.new_user()
    taken = client.patch(
        f"/users/{user['id']}",
        headers=headers,
        json={"email": other["email"], "current_password": "password-1"},
    )
    assert taken.status_code == 409 and taken.get_json()["code"] == "conflict"
    invalid = client.patch(f"/users/{user['id']}", headers=headers, json={"email": "nope"})
    assert invalid.status_code == 422 and "email" in invalid.get_json()["errors"]["json"]
    assert container.user_repo.get(user["id"]).email == user["email"]
