"""TTL items against Redis's memory, on a private redis-server with a small `maxmemory` and
`noeviction` (as in compose and k8s) and real MariaDB: one user's items stop at their byte
quota long before Redis is full, the quotas hold under concurrent writes, and a Redis that
is full anyway answers 503 with Retry-After, never 500."""

from __future__ import annotations

import threading

import pytest
import redis as redis_lib

from api import create_app
from core.bootstrap import Container
from core.settings import Settings
from tests.support.auth import Auth, basic
from tests.support.config import service_env
from tests.support.servers import RedisServer
from tests.support.wait import scaled, wait_for

TUS = {"Tus-Resumable": "1.0.0"}
ITEM = {"blob": "x" * (60 * 1024)}  # under ITEM_MAX_BYTES (64 KiB)


@pytest.fixture
def small_redis(tmp_path):
    server = RedisServer(str(tmp_path), "--maxmemory", "16mb", "--maxmemory-policy", "noeviction")
    server.start()
    yield server
    server.stop()


def app_on(server: RedisServer, container, tmp_path, **env: str):
    """The API with its Redis on `server`; env as the process would read it."""
    settings = Settings.from_env(
        service_env(DATA_DIR=tmp_path, REDIS_URL=server.url(0), **env), dotenv_path=None
    )
    built = Container(settings, passwords=container.passwords)
    app = create_app(container=built)
    app.config["TESTING"] = True
    return app.test_client(), settings


def test_one_user_cannot_fill_redis(small_redis, container, tmp_path):
    client, settings = app_on(small_redis, container, tmp_path, QUOTA_ITEMS_MB="4")
    auth = Auth(client, settings)
    _, mallory = auth.new_user()
    alice, alice_headers = auth.new_user()
    for n in range(400):  # 24 MiB of items: more than the server's 16 MiB
        response = client.put(f"/items/fill/{n}", json=ITEM, headers=mallory)
        if response.status_code != 201:
            break
    assert response.status_code == 413, (n, response.status_code, response.get_json())
    quota = response.get_json()["errors"]["quota"]
    assert quota["limit"] == "QUOTA_ITEMS_MB" and quota["max"] == 4 * 2**20
    assert 4 * 2**20 - 64 * 1024 < quota["used"] <= 4 * 2**20
    assert 60 <= n <= 70  # about 4 MiB of 60 KiB items
    # replacing an item counts only the difference: the same size again fits
    assert client.put("/items/fill/0", json=ITEM, headers=mallory).status_code == 200
    # deleting one makes room for one
    assert client.delete("/items/fill/1", headers=mallory).status_code == 204
    assert client.put(f"/items/fill/{n}", json=ITEM, headers=mallory).status_code == 201
    assert client.put("/items/fill/again", json=ITEM, headers=mallory).status_code == 413
    # everyone else still writes: an item, a failed login (throttle), a resumable upload
    assert client.put("/items/mine", json={"a": 1}, headers=alice_headers).status_code == 201
    wrong = client.post("/login", headers=basic(alice["email"], "not-the-password"))
    assert wrong.status_code == 401
    created = client.post("/uploads/", headers={**alice_headers, **TUS, "Upload-Length": "100"})
    assert created.status_code == 201


def test_expired_items_give_their_room_back(small_redis, container, tmp_path):
    client, settings = app_on(small_redis, container, tmp_path, QUOTA_ITEMS_MB="1")
    _, headers = Auth(client, settings).new_user()
    for n in range(40):
        response = client.put(f"/items/t/{n}?ttl=1", json=ITEM, headers=headers)
        if response.status_code != 201:
            break
    assert response.status_code == 413
    assert client.put("/items/late", json=ITEM, headers=headers).status_code == 413
    wait_for(
        lambda: client.put("/items/late", json=ITEM, headers=headers).status_code == 201,
        timeout=10,
        what="the expired items to free their quota",
    )


def test_item_quotas_hold_under_concurrent_writes(small_redis, container, tmp_path):
    client, settings = app_on(
        small_redis, container, tmp_path, QUOTA_ITEMS="5", QUOTA_ITEMS_MB="1", MYSQL_POOL_SIZE="20"
    )
    _, headers = Auth(client, settings).new_user()
    statuses: list[int] = []
    start = threading.Barrier(16)

    def put(n: int) -> None:
        start.wait(timeout=scaled(30))
        statuses.append(client.put(f"/items/race/{n}", json={"n": n}, headers=headers).status_code)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=scaled(60))
    assert sorted(statuses) == [201] * 5 + [413] * 11
    stored = [
        n for n in range(16) if client.get(f"/items/race/{n}", headers=headers).status_code == 200
    ]
    assert len(stored) == 5


def fill(filler: redis_lib.Redis) -> None:
    """Fill the server from outside the API, as a runaway client would, and leave it past
    its maxmemory, so every write that needs memory is refused."""
    for n in range(32):
        filler.set(f"filler:{n}", b"\0" * 64 * 1024)
    used = int(filler.info("memory")["used_memory"])
    filler.config_set("maxmemory", used - 512 * 1024)


def test_a_full_redis_answers_503_with_retry_after(small_redis, container, tmp_path):
    client, settings = app_on(small_redis, container, tmp_path)
    auth = Auth(client, settings)
    user, headers = auth.new_user()
    assert client.put("/items/kept", json={"a": 1}, headers=headers).status_code == 201
    filler = redis_lib.Redis(port=small_redis.port, db=3)
    fill(filler)
    try:
        writes = {
            "item": client.put("/items/new", json={"a": 1}, headers=headers),
            "hit counter": client.get("/"),
            "tus upload": client.post(
                "/uploads/", headers={**headers, **TUS, "Upload-Length": "9"}
            ),
        }
        for what, response in writes.items():
            assert response.status_code == 503, (what, response.status_code, response.get_json())
            assert response.get_json()["code"] == "unavailable"
            assert int(response.headers["Retry-After"]) > 0
        # reads still work
        assert client.get("/items/kept", headers=headers).status_code == 200
        assert client.get("/jobs", headers=headers).status_code == 200
    finally:
        filler.config_set("maxmemory", "16mb")
        filler.flushdb()
        filler.close()
    assert client.put("/items/new", json={"a": 1}, headers=headers).status_code == 201


def test_all_users_together_stay_under_the_items_ceiling(small_redis, container, tmp_path):
    """ITEMS_TOTAL_MB caps what every account's items take together (a crowd of accounts
    cannot fill Redis either); expired items give their room back though their owner never
    writes again."""
    client, settings = app_on(
        small_redis, container, tmp_path, QUOTA_ITEMS_MB="1", ITEMS_TOTAL_MB="2"
    )
    auth = Auth(client, settings)
    crowd = [auth.new_user()[1] for _ in range(3)]
    answers = []
    for n, headers in enumerate(crowd):
        for i in range(20):
            response = client.put(f"/items/{n}/{i}?ttl=2", json=ITEM, headers=headers)
            if response.status_code != 201:
                break
        answers.append(response)
    assert [r.status_code for r in answers] == [413, 413, 503]
    assert "full" in answers[2].get_json()["message"]
    assert int(answers[2].headers["Retry-After"]) > 0
    _, late = auth.new_user()
    wait_for(
        lambda: client.put("/items/late", json=ITEM, headers=late).status_code == 201,
        timeout=15,
        what="expired items of others to free the ceiling",
    )
