"""CPU and time of a request authenticated with an API key against one with a JWT.

`.venv/bin/python bench/auth_cost.py [--requests N] [--runs N]`: the app in this process
(Flask's test client, no HTTP server) on a throwaway database on the test MySQL and a key
prefix on Redis, both removed after. Each run sends N `GET /items/bench` with a token, then N
with a key, alternating the order between runs; process CPU (time.process_time) and wall time
per request. Writes bench/results/latest-auth-cost.md."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, os.getcwd())

from core.settings import Settings  # noqa: E402
from tests.support.config import drop_database, service_env  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "latest-auth-cost.md"


def per_request(client, headers: dict[str, str], n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per request, the mean over n."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        response = client.get("/items/bench", headers=headers)
        assert response.status_code == 200, response.get_json()
    return (
        (time.process_time() - cpu) * 1000 / n,
        (time.perf_counter() - wall) * 1000 / n,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from api import create_app
    from core.adapters.redis.client import redis_client
    from core.bootstrap import Container
    from core.migrate import run

    settings = Settings.from_env(service_env(DATA_DIR=tempfile.mkdtemp()), dotenv_path=None)
    assert run(settings, say=lambda line: None, fail=print) == 0
    container = Container(settings)
    try:
        app = create_app(container=container)
        client = app.test_client()
        import base64

        basic = base64.b64encode(
            f"{settings.admin_email}:{settings.admin_password}".encode()
        ).decode()
        token = client.post("/login", headers={"Authorization": f"Basic {basic}"}).get_json()
        jwt = {"Authorization": f"Bearer {token['access_token']}"}
        made = client.post("/api-keys", json={"name": "bench", "scopes": ["items"]}, headers=jwt)
        key = {"Authorization": f"Bearer {made.get_json()['key']}"}
        client.put("/items/bench", json={"v": 1}, headers=jwt)
        per_request(client, jwt, 200)  # warm both paths: pools, caches, imports
        per_request(client, key, 200)
        results: dict[str, list[tuple[float, float]]] = {"jwt": [], "key": []}
        for i in range(args.runs):
            order = [("jwt", jwt), ("key", key)]
            for name, headers in order if i % 2 == 0 else order[::-1]:
                results[name].append(per_request(client, headers, args.requests))
    finally:
        container.close()
        drop_database(settings)
        redis = redis_client(settings.redis_url)
        for found in redis.scan_iter(match=settings.redis_prefix + "*", count=500):
            redis.delete(found)
        redis.close()
    write(results, args)


def write(results: dict[str, list[tuple[float, float]]], args: argparse.Namespace) -> None:
    def fig(values: list[float]) -> str:
        return (
            f"{statistics.median(values):.3f} ms ({min(values):.3f}-{max(values):.3f}, "
            f"n={len(values)})"
        )

    jwt_cpu = [cpu for cpu, _ in results["jwt"]]
    key_cpu = [cpu for cpu, _ in results["key"]]
    rows = [
        ("CPU per request", fig(jwt_cpu), fig(key_cpu)),
        (
            "wall per request",
            fig([w for _, w in results["jwt"]]),
            fig([w for _, w in results["key"]]),
        ),
    ]
    ratio = statistics.median(key_cpu) / statistics.median(jwt_cpu)
    lines = [
        "# API key vs JWT: cost of an authenticated request",
        "",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        f"- command: `.venv/bin/python bench/auth_cost.py --requests {args.requests} "
        f"--runs {args.runs}`",
        "- `GET /items/bench` through Flask's test client in one process, MariaDB and Redis on "
        "the same host; medians of the runs, with min-max",
        "",
        "| per request | JWT (`/login` token) | API key |",
        "| --- | --- | --- |",
        *[f"| {name} | {a} | {b} |" for name, a, b in rows],
        "",
        f"CPU of a keyed request / a token's: {ratio:.2f}x. The token's check is one Redis GET "
        "(its user's token state; the signature check is cached per token); the key's is one "
        "indexed MySQL query (key and owner's role) and a SHA-256, plus one UPDATE of "
        "last_used_at a minute.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
