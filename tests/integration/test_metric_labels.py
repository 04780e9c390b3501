"""/metrics stays the same size whatever anonymous clients send: every label of the HTTP
metrics comes from a closed set (the app's routes, a fixed list of methods), so made-up
methods and paths cannot add series. Over the test client, on real MariaDB and Redis."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
HTTP_METRICS = ("vid2mp3_http_requests", "vid2mp3_http_request_duration_seconds")


def series(client) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(scraped.get_data(as_text=True))
        if family.name in HTTP_METRICS
        for sample in family.samples
    }


def junk(client, count: int) -> None:
    """Anonymous requests with made-up methods, on made-up and on real paths."""
    for n in range(count):
        method = f"X{uuid.uuid4().hex[:10].upper()}"
        path = ("/jobs", "/items/a", "/uploads/", f"/{uuid.uuid4().hex}")[n % 4]
        response = client.open(path, method=method)
        assert response.status_code in (401, 404, 405), (method, path, response.status_code)
        assert client.open(f"/{uuid.uuid4().hex}/x", method="GET").status_code == 404


def test_made_up_methods_and_paths_add_no_series(client, app):
    junk(client, 8)  # every closed-set series these requests can reach exists now
    series(client)  # and the scrape's own
    before = series(client)
    junk(client, 120)
    after = series(client)
    assert after == before, f"{len(after - before)} new series, e.g. {sorted(after - before)[:3]}"
    routes = {rule.rule for rule in app.url_map.iter_rules()} | {"<unmatched>"}
    for _, labels in after:
        found = dict(labels)
        assert found["method"] in METHODS, found
        assert found["route"] in routes, found


def test_real_requests_keep_their_method_and_route(client):
    assert client.get("/healthz").status_code == 200
    labels = {dict(labels)["route"] for _, labels in series(client)}
    assert "/healthz" in labels
    found = {
        (dict(labels)["method"], dict(labels)["route"])
        for name, labels in series(client)
        if name == "vid2mp3_http_requests_total"
    }
    assert ("GET", "/healthz") in found
