"""Target 7: authenticated GET /items/<key> vs unauthenticated GET /healthz on the same server."""

from __future__ import annotations

import json

from bench import loadgen
from bench.report import Figure, Row, Section, percentile
from bench.stack import BenchStack

RATIO_LIMIT = 0.5
CONNECTIONS = 8  # WEB_CONCURRENCY=2 workers x 4 threads
ITEM_KEY = "bench/item-1"


def measure(st: BenchStack, reps: int, seconds: float) -> Section:
    section = Section("API requests/s (target 7)")
    api = st.client()
    try:
        body = json.dumps({"title": "benchmark", "tags": ["a", "b"], "count": 1}).encode()
        status, answer = api.request(
            "PUT", f"/items/{ITEM_KEY}", body=body, headers={"Content-Type": "application/json"}
        )
        if status not in (200, 201):
            raise RuntimeError(f"PUT item: {status} {answer[:300]!r}")
    finally:
        api.close()
    host = f"127.0.0.1:{st.port}"
    requests = {
        "healthz": loadgen.get_request("/healthz", host),
        "items": loadgen.get_request(f"/items/{ITEM_KEY}", host, st.admin.token),
    }
    for request in requests.values():  # warm both paths (imports, pools, connections)
        loadgen.run_in_process("127.0.0.1", st.port, request, CONNECTIONS, 2.0)
    results: dict[str, list[loadgen.LoadResult]] = {name: [] for name in requests}
    for _ in range(reps):
        for name, request in requests.items():
            result = loadgen.run_in_process("127.0.0.1", st.port, request, CONNECTIONS, seconds)
            if result.errors or not result.requests:
                raise RuntimeError(f"{name}: {result.errors} errors, {result.requests} answers")
            results[name].append(result)
    health = Figure.of([r.rate for r in results["healthz"]])
    items = Figure.of([r.rate for r in results["items"]])
    ratio = items.median / health.median
    pair = Figure.of([b.rate / a.rate for a, b in zip(results["healthz"], results["items"])])
    section.rows.append(
        Row(
            "7. API req/s: authenticated GET /items/<key> vs GET /healthz",
            f"items {items.fmt('req/s', 0)}; healthz {health.fmt('req/s', 0)}",
            f"{ratio:.2f}x (per pair {pair.low:.2f}-{pair.high:.2f}) >= {RATIO_LIMIT}x",
            ratio >= RATIO_LIMIT,
        )
    )
    lat = {name: [x for r in runs for x in r.latencies] for name, runs in results.items()}
    section.details.append(
        f"- gunicorn with the production gunicorn.conf.py (2 gthread workers x 4 threads, "
        f"access log on); load from a separate process: {CONNECTIONS} keep-alive connections, "
        f"{seconds:g} s per run, runs alternating, after a 2 s warm-up of each. Latency "
        + "; ".join(
            f"{name} p50 {percentile(v, 50) * 1000:.1f} ms, p99 {percentile(v, 99) * 1000:.1f} ms"
            for name, v in lat.items()
        )
        + "."
    )
    return section
