"""Per request: an X-Request-ID on every response, the id in the log context, HTTP metrics."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from api.deps import container
from core.observability import REQUEST_ID_HEADER, accept_request_id, bind


def install(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_forget)


def _start() -> None:
    g.request_started = time.perf_counter()
    g.request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    bind(request_id=g.request_id)


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or accept_request_id(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    route = request.url_rule.rule if request.url_rule else "<unmatched>"
    started = g.get("request_started", time.perf_counter())
    container().metrics.http_request(
        request.method, route, response.status_code, time.perf_counter() - started
    )
    return response


def _forget(exc: BaseException | None) -> None:
    bind()
