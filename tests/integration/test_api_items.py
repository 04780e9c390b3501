"""TTL items, the hit counter and health over the test client, on real Redis and MariaDB."""

import pytest

from tests.support.openapi import documented_operations, routed_operations


def test_put_get_delete_item(client, auth):
    _, headers = auth.new_user()
    created = client.put("/items/prefs/theme", json={"color": "blue"}, headers=headers)
    assert created.status_code == 201
    body = created.get_json()
    assert body["color"] == "blue" and body["ttl"] == 365 * 24 * 3600
    assert isinstance(body["last_updated"], int)
    replaced = client.put("/items/prefs/theme?ttl=120", json={"color": "red"}, headers=headers)
    assert replaced.status_code == 200 and replaced.get_json()["ttl"] == 120
    read = client.get("/items/prefs/theme", headers=headers).get_json()
    assert read["color"] == "red" and 0 < read["ttl"] <= 120
    assert client.delete("/items/prefs/theme", headers=headers).status_code == 204
    assert client.get("/items/prefs/theme", headers=headers).status_code == 404


def test_items_are_private(client, auth):
    _, alice = auth.new_user()
    _, bob = auth.new_user()
    client.put("/items/shared-name", json={"owner": "alice"}, headers=alice)
    assert client.get("/items/shared-name", headers=bob).status_code == 404
    assert client.delete("/items/shared-name", headers=bob).status_code == 404
    assert client.get("/items/shared-name", headers=alice).get_json()["owner"] == "alice"


@pytest.mark.parametrize(
    "path",
    [
        "/items/a/../b",
        "/items/a*",
        "/items/a%3F",
        "/items/has%20space",
        "/items/new%0Aline",
        "/items/%2A",
    ],
)
def test_unsafe_keys_are_rejected_and_nothing_stored(client, auth, container, path):
    user, headers = auth.new_user()
    response = client.put(path, json={"v": 1}, headers=headers)
    assert response.status_code in (400, 404, 422)
    assert response.is_json
    assert stored_keys(container, user["id"]) == []


def stored_keys(container, owner_id):
    """Every Redis key holding an item of this owner, read past the API."""
    pattern = f"{container.settings.redis_prefix}item:{owner_id}:*"
    return sorted(container.redis.scan_iter(match=pattern))


@pytest.mark.parametrize(
    "data,content_type,status",
    [
        ("[1,2]", "application/json", 400),
        ("{bad", "application/json", 400),
        ("a=1", "text/plain", 415),
        (b"\xff\xfe{", "application/json", 400),
        ("[" * 50000 + "]" * 50000, "application/json", 400),
        ('{"a": "' + "x" * 70000 + '"}', "application/json", 413),
        ('{"a": "' + "x" * 2_000_000 + '"}', "application/json", 413),
    ],
)
def test_bad_bodies_are_4xx_and_store_nothing(client, auth, container, data, content_type, status):
    user, headers = auth.new_user()
    response = client.put("/items/k", data=data, content_type=content_type, headers=headers)
    assert response.status_code == status and response.is_json
    assert client.get("/items/k", headers=headers).status_code == 404
    assert stored_keys(container, user["id"]) == []


def test_items_need_a_token(client):
    assert client.get("/items/k").status_code == 401


def test_hit_counter_grows_by_one(client):
    first = client.get("/").get_json()
    second = client.get("/").get_json()
    assert first["service"] == "vid2mp3" and second["hits"] == first["hits"] + 1


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["mysql"] == "ok"


def test_errors_share_one_shape(client):
    for response in (client.get("/no-such-route"), client.delete("/healthz"), client.get("/users")):
        body = response.get_json()
        assert set(body) >= {"status", "code", "message"} and body["status"] == response.status_code


def test_openapi_documents_every_route(client, app):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    routed, documented = routed_operations(app), documented_operations(spec)
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations no route answers"
    assert ("/jobs/{job_id}/mp3", "get") in routed and len(routed) >= 19
    assert "Error" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200
    assert client.get("/static/app.js").status_code == 404
