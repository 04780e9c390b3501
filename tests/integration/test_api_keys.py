"""API keys over the test client on MariaDB and Redis: made, used, scoped, revoked, refused."""

from __future__ import annotations

import base64
import itertools
import logging
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest

from core.domain.api_keys import SCOPES
from tests.support.openapi import example_url, reference

KEY = re.compile(r"v2m_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_addresses = itertools.count(1)


def fresh_address() -> dict[str, dict[str, str]]:
    """A client address of this test alone: failed keys count against the address's budget."""
    n = next(_addresses)
    return {"environ_base": {"REMOTE_ADDR": f"10.26.{n // 250}.{n % 250 + 1}"}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_key(client, headers, scopes, **fields) -> dict:
    response = client.post(
        "/api-keys", json={"name": "script", "scopes": scopes, **fields}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_key_is_shown_once_and_listed_without_its_secret(client, auth):
    user, headers = auth.new_user()
    made = make_key(client, headers, ["jobs:read", "jobs:write"], name="nightly")
    assert KEY.fullmatch(made["key"]) and made["prefix"] == KEY.fullmatch(made["key"])[1]
    assert made["scopes"] == ["jobs:read", "jobs:write"] and made["expires_at"] is None
    assert made["owner_id"] == user["id"] and made["name"] == "nightly"

    listed = client.get("/api-keys", headers=headers)
    assert listed.status_code == 200
    (entry,) = listed.get_json()
    assert entry["id"] == made["id"] and entry["prefix"] == made["prefix"]
    assert "key" not in entry and made["key"] not in listed.get_data(as_text=True)
    assert entry["last_used_at"] is None

    jobs = client.get("/jobs", headers=bearer(made["key"]))
    assert jobs.status_code == 200 and jobs.get_json()["total"] == 0
    used = client.get("/api-keys", headers=headers).get_json()[0]["last_used_at"]
    assert used is not None


def test_last_used_at_is_written_at_most_once_a_minute(client, auth, container):
    _, headers = auth.new_user()
    made = make_key(client, headers, ["jobs:read"])
    client.get("/jobs", headers=bearer(made["key"]))
    first = container.api_key_repo.get(made["id"]).last_used_at
    for _ in range(3):
        assert client.get("/jobs", headers=bearer(made["key"])).status_code == 200
    assert container.api_key_repo.get(made["id"]).last_used_at == first
    # A minute later, the next use is recorded.
    with container.db.cursor() as cur:
        cur.execute(
            "UPDATE api_keys SET last_used_at = last_used_at - INTERVAL 61 SECOND WHERE id = %s",
            (made["id"],),
        )
    client.get("/jobs", headers=bearer(made["key"]))
    assert container.api_key_repo.get(made["id"]).last_used_at > first - timedelta(seconds=1)


def test_the_key_is_stored_only_as_a_hash(client, auth, container):
    _, headers = auth.new_user()
    made = make_key(client, headers, ["items"])
    secret = KEY.fullmatch(made["key"])[2]
    with container.db.cursor() as cur:
        cur.execute("SELECT * FROM api_keys WHERE id = %s", (made["id"],))
        row = cur.fetchone()
    stored = repr(row)
    assert secret not in stored and made["key"] not in stored
    assert bytes(row["secret_hash"]) != secret.encode()


# --- the scopes: every route walked with a key of each scope ---------------------------------

BODIES = {
    ("/upload", "post"): {},
    ("/uploads/", "post"): {"headers": {"Tus-Resumable": "1.0.0", "Upload-Length": "10"}},
    ("/items/{key}", "put"): {"json": {"v": 1}},
}


def scoped_operations() -> list[tuple[str, str, str]]:
    """(path, method, scope) of every operation whose OpenAPI entry names a key scope."""
    _, spec = reference()
    return sorted(
        (path, method, operation["x-api-key-scope"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "x-api-key-scope" in operation
    )


def test_every_bearer_operation_names_its_scope():
    _, spec = reference()
    unscoped = {
        (path, method)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
        and {"bearerAuth": []} in operation.get("security", [])
        and "x-api-key-scope" not in operation
    }
    assert unscoped == {("/validate", "post")}  # any valid key: it only reads the key itself
    assert {scope for *_, scope in scoped_operations()} == set(SCOPES)


def call(client, path, method, headers):
    url = example_url(path)
    extra = BODIES.get((path, method), {})
    merged = {**headers, **extra.get("headers", {})}
    if path.startswith("/uploads/"):
        merged["Tus-Resumable"] = "1.0.0"
    options = {k: v for k, v in extra.items() if k != "headers"}
    if method in ("post", "patch") and "json" not in options and path not in ("/upload",):
        options.setdefault("json", {} if path != "/users/{user_id}" else {"name": "x"})
    if path == "/uploads/":
        options.pop("json", None)
    return client.open(url, method=method.upper(), headers=merged, **options)


@pytest.fixture(scope="module")
def keys_of_each_scope(app, settings):
    """One user holding one key per scope (made through the API)."""
    client = app.test_client()
    admin = client.post(
        "/login",
        headers={
            "Authorization": "Basic "
            + base64.b64encode(
                f"{settings.admin_email}:{settings.admin_password}".encode()
            ).decode()
        },
    ).get_json()["access_token"]
    made = client.post(
        "/users",
        json={"name": "scope-walker", "email": "walker@example.com", "password": "password-1"},
        headers=bearer(admin),
    )
    assert made.status_code == 201
    token = client.post(
        "/login",
        headers={
            "Authorization": "Basic " + base64.b64encode(b"walker@example.com:password-1").decode()
        },
    ).get_json()["access_token"]
    return {scope: make_key(client, bearer(token), [scope])["key"] for scope in SCOPES}


@pytest.mark.parametrize("path,method,needed", scoped_operations())
@pytest.mark.parametrize("scope", SCOPES)
def test_a_key_reaches_exactly_the_routes_of_its_scope(
    client, keys_of_each_scope, path, method, needed, scope
):
    response = call(client, path, method, bearer(keys_of_each_scope[scope]))
    body = response.get_json(silent=True) or {}
    refused = response.status_code == 403 and (
        method == "head" or "lacks the scope" in body.get("message", "")
    )
    assert response.status_code != 401, body
    if scope == needed:
        assert not refused, (path, method, body)
    else:
        assert refused, (path, method, response.status_code, body)
        assert method == "head" or body["message"] == f"this API key lacks the scope '{needed}'"


def test_a_key_without_account_never_makes_keys_or_changes_a_password(client, auth):
    user, headers = auth.new_user()
    every_other = [s for s in SCOPES if s != "account"]
    key = make_key(client, headers, every_other)["key"]
    made = client.post("/api-keys", json={"name": "x", "scopes": ["items"]}, headers=bearer(key))
    assert made.status_code == 403
    changed = client.patch(
        f"/users/{user['id']}",
        json={"password": "another-pass-1", "current_password": "password-1"},
        headers=bearer(key),
    )
    assert changed.status_code == 403
    assert client.post("/login", headers=_basic(user["email"], "password-1")).status_code == 200


def test_a_key_makes_keys_only_within_its_own_scopes(client, auth):
    _, headers = auth.new_user()
    key = make_key(client, headers, ["account", "items"])["key"]
    wider = client.post(
        "/api-keys", json={"name": "x", "scopes": ["jobs:write"]}, headers=bearer(key)
    )
    assert wider.status_code == 403 and "scopes it holds" in wider.get_json()["message"]
    narrower = client.post(
        "/api-keys", json={"name": "x", "scopes": ["items"]}, headers=bearer(key)
    )
    assert narrower.status_code == 201


def test_validate_tells_a_key_its_user_and_scopes(client, auth):
    user, headers = auth.new_user()
    key = make_key(client, headers, ["jobs:read", "items"])["key"]
    claims = client.post("/validate", headers=bearer(key))
    assert claims.status_code == 200
    assert claims.get_json() == {
        "sub": str(user["id"]),
        "role": "user",
        "scopes": ["items", "jobs:read"],
    }


@pytest.mark.parametrize(
    "body,field",
    [
        ({"scopes": ["items"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["admin"]}, "scopes"),
        ({"name": "x", "scopes": ["items"], "expires_in": 5}, "expires_in"),
        ({"name": "x" * 101, "scopes": ["items"]}, "name"),
        ({"name": "x", "scopes": ["items"], "owner_id": 1}, "owner_id"),
    ],
)
def test_a_bad_request_for_a_key_names_the_field(client, auth, body, field):
    _, headers = auth.new_user()
    response = client.post("/api-keys", json=body, headers=headers)
    assert response.status_code == 422
    assert field in str(response.get_json())


# --- revocation, expiry, deleted users and demoted admins ---------------------------------


def test_a_revoked_key_is_refused_on_the_next_request(client, auth):
    _, headers = auth.new_user()
    made = make_key(client, headers, ["jobs:read"])
    assert client.get("/jobs", headers=bearer(made["key"])).status_code == 200
    assert client.delete(f"/api-keys/{made['id']}", headers=headers).status_code == 204
    refused = client.get("/jobs", headers=bearer(made["key"]), **fresh_address())
    assert refused.status_code == 401
    assert refused.get_json()["message"] == "invalid API key: unknown or revoked"
    assert client.get("/api-keys", headers=headers).get_json() == []
    assert client.delete(f"/api-keys/{made['id']}", headers=headers).status_code == 404


def test_a_key_revoked_while_in_use_stops_at_the_revocation(app, client, auth):
    """Requests race the revocation: each one is served or refused whole, and none that
    starts after the DELETE answered is served."""
    _, headers = auth.new_user()
    made = make_key(client, headers, ["jobs:read"])
    revoked = threading.Event()
    outcomes: list[tuple[bool, int]] = []
    lock = threading.Lock()

    def use() -> None:
        own = app.test_client()
        for _ in range(15):
            after = revoked.is_set()
            status = own.get("/jobs", headers=bearer(made["key"]), **fresh_address()).status_code
            with lock:
                outcomes.append((after, status))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert client.delete(f"/api-keys/{made['id']}", headers=headers).status_code == 204
    revoked.set()
    for thread in threads:
        thread.join(timeout=60)
    assert {status for _, status in outcomes} <= {200, 401}
    assert all(status == 401 for after, status in outcomes if after)
    assert any(after for after, _ in outcomes)


def test_an_expired_key_gets_401_saying_so(client, auth, container):
    _, headers = auth.new_user()
    made = make_key(client, headers, ["jobs:read"], expires_in=3600)
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(timezone.utc) <= timedelta(hours=1)
    assert client.get("/jobs", headers=bearer(made["key"])).status_code == 200
    with container.db.cursor() as cur:
        cur.execute(
            "UPDATE api_keys SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = %s",
            (made["id"],),
        )
    refused = client.get("/jobs", headers=bearer(made["key"]))
    assert refused.status_code == 401 and refused.get_json()["message"] == "API key expired"


def test_the_keys_of_a_deleted_user_stop_at_once(client, auth):
    user, headers = auth.new_user()
    key = make_key(client, headers, ["jobs:read"])["key"]
    assert client.delete(f"/users/{user['id']}", headers=auth.admin()).status_code == 204
    refused = client.get("/jobs", headers=bearer(key), **fresh_address())
    assert refused.status_code == 401


def test_a_demoted_admin_key_loses_the_admin_routes_at_once(client, auth, settings):
    admin_password = settings.admin_password
    user, headers = auth.new_user()
    promoted = client.patch(
        f"/users/{user['id']}",
        json={"role": "admin", "current_password": admin_password},
        headers=auth.admin(),
    )
    assert promoted.status_code == 200
    headers = auth.headers(user["email"], "password-1")
    key = make_key(client, headers, ["account"])["key"]
    assert client.get("/users", headers=bearer(key)).status_code == 200
    demoted = client.patch(
        f"/users/{user['id']}",
        json={"role": "user", "current_password": admin_password},
        headers=auth.admin(),
    )
    assert demoted.status_code == 200
    assert client.get("/users", headers=bearer(key)).status_code == 403
    assert client.get(f"/users/{user['id']}", headers=bearer(key)).status_code == 200


def test_admins_list_and_revoke_anyones_keys_and_users_do_not(client, auth):
    alice, alice_headers = auth.new_user()
    _, bob_headers = auth.new_user()
    made = make_key(client, alice_headers, ["items"])
    assert client.get(f"/api-keys?user_id={alice['id']}", headers=bob_headers).status_code == 403
    assert client.delete(f"/api-keys/{made['id']}", headers=bob_headers).status_code == 404
    assert client.get("/api-keys?user_id=alice", headers=auth.admin()).status_code == 422
    listed = client.get(f"/api-keys?user_id={alice['id']}", headers=auth.admin())
    assert [k["id"] for k in listed.get_json()] == [made["id"]]
    assert client.delete(f"/api-keys/{made['id']}", headers=auth.admin()).status_code == 204
    assert client.get("/items/x", headers=bearer(made["key"]), **fresh_address()).status_code == 401


# --- bad input -------------------------------------------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "text",
    [
        "v2m_",
        "v2m_abc",
        "v2m_0123456789ab",
        "v2m_0123456789ab_short",
        "v2m_0123456789AB_" + "a" * 43,
        "v2m_0123456789ab_" + "a" * 44,
        "v2m_0123456789ab_" + "é" * 43,
        "v2m_0123456789ab_" + "a" * 42 + "%",
        "v2m_" + "x" * 8000,
    ],
)
def test_a_malformed_key_gets_401_without_a_lookup(client, text):
    response = client.get("/jobs", headers=bearer(text), **fresh_address())
    assert response.status_code == 401
    body = response.get_json()
    assert body["message"] == "malformed API key: expected v2m_<prefix>_<secret>"
    assert text == "v2m_" or text not in response.get_data(as_text=True)


def test_a_known_prefix_with_a_wrong_secret_gets_401(client, auth):
    _, headers = auth.new_user()
    made = make_key(client, headers, ["jobs:read"])
    prefix, secret = KEY.fullmatch(made["key"]).groups()
    wrong = "A" if secret[0] != "A" else "B"
    response = client.get(
        "/jobs", headers=bearer(f"v2m_{prefix}_{wrong}{secret[1:]}"), **fresh_address()
    )
    assert response.status_code == 401
    assert response.get_json()["message"] == "invalid API key: unknown or revoked"
    assert secret[1:] not in response.get_data(as_text=True)
    assert client.get("/jobs", headers=bearer(made["key"])).status_code == 200


def test_a_key_sent_as_basic_credentials_is_refused_and_says_how(client, auth):
    _, headers = auth.new_user()
    key = make_key(client, headers, ["jobs:read"])["key"]
    for credentials in (_basic(key, ""), _basic("me@example.com", key)):
        login = client.post("/login", headers=credentials, **fresh_address())
        assert login.status_code == 401
        assert "not as Basic credentials" in login.get_json()["message"]
        assert key not in login.get_data(as_text=True)
        jobs = client.get("/jobs", headers=credentials)
        assert jobs.status_code == 401 and "not as Basic" in jobs.get_json()["message"]


@pytest.mark.parametrize("name", ["api_key", "access_token", "key"])
def test_a_key_in_the_query_string_is_refused_even_beside_a_good_header(client, auth, name):
    _, headers = auth.new_user()
    key = make_key(client, headers, ["jobs:read"])["key"]
    for sent in ({}, bearer(key)):
        response = client.get("/jobs", query_string=[(name, "x"), (name, key)], headers=sent)
        assert response.status_code == 401
        message = response.get_json()["message"]
        assert "in the URL is refused" in message and "revoke" in message
        assert key not in response.get_data(as_text=True)


def test_guessing_keys_is_throttled_like_failed_logins(client, auth, settings):
    _, headers = auth.new_user()
    good = make_key(client, headers, ["jobs:read"])["key"]
    address = fresh_address()
    statuses = []
    for n in range(settings.login_max_failures_per_address + 2):
        guess = f"v2m_{n:012x}_" + "a" * 43
        statuses.append(client.get("/jobs", headers=bearer(guess), **address).status_code)
    assert set(statuses[: settings.login_max_failures_per_address]) == {401}
    assert statuses[-1] == 429
    throttled = client.get("/jobs", headers=bearer(good), **address)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    # ... and a password from there too, as after failed logins.
    login = client.post("/login", headers=_basic(settings.admin_email, "wrong"), **address)
    assert login.status_code == 429
    assert client.get("/jobs", headers=bearer(good), **fresh_address()).status_code == 200


def test_a_key_never_reaches_the_logs_or_metrics(client, auth, caplog):
    _, headers = auth.new_user()
    caplog.set_level(logging.DEBUG)
    made = make_key(client, headers, ["jobs:read", "account"])
    secret = KEY.fullmatch(made["key"])[2]
    client.get("/jobs", headers=bearer(made["key"]))
    client.get("/jobs", headers=bearer(made["key"][:-1] + "!"), **fresh_address())
    client.get("/jobs", query_string={"k": made["key"]})
    client.delete(f"/api-keys/{made['id']}", headers=headers)
    client.get("/jobs", headers=bearer(made["key"]), **fresh_address())
    metrics = client.get("/metrics").get_data(as_text=True)
    assert secret not in caplog.text and secret not in metrics
    assert made["prefix"] in caplog.text  # what the log says instead: the key's public part


@pytest.fixture(scope="module")
def throttled_address(app, settings, keys_of_each_scope):
    """An address that failed too many keys already."""
    address = {"environ_base": {"REMOTE_ADDR": "10.26.255.1"}}
    client = app.test_client()
    for n in range(settings.login_max_failures_per_address + 1):
        client.get("/jobs", headers=bearer(f"v2m_{n:012x}_" + "b" * 43), **address)
    return address


@pytest.mark.parametrize("path,method,needed", scoped_operations())
def test_every_keyed_route_waits_out_a_guessing_address(
    client, keys_of_each_scope, throttled_address, path, method, needed
):
    url = example_url(path)
    headers = bearer(keys_of_each_scope[needed])
    if path.startswith("/uploads/"):
        headers["Tus-Resumable"] = "1.0.0"
    response = client.open(url, method=method.upper(), headers=headers, **throttled_address)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
