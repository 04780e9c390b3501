"""An HTTP client of the API for end-to-end and fault tests."""

from __future__ import annotations

import time

import requests

from tests.support.api_statuses import record_http

# gunicorn closes a keep-alive connection idle for `keepalive` (5 s): a request sent on it as
# it closes fails with "Remote end closed connection without response". Reconnect well before.
MAX_IDLE_S = 2.0


class Client:
    """The API as a user reaches it: over HTTP, with a Bearer token."""

    def __init__(self, stack, token: str | None = None):
        self.stack = stack
        self.session = requests.Session()
        self.session.hooks["response"].append(record_http)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._last_used = time.monotonic()

    def __getattr__(self, method):
        call = getattr(self.session, method)

        def send(path, **kw):
            if time.monotonic() - self._last_used > MAX_IDLE_S:
                self.session.close()  # its pooled connections; the next request opens anew
            try:
                return call(self.stack.url(path), timeout=kw.pop("timeout", 30), **kw)
            finally:
                self._last_used = time.monotonic()

        return send


def login(stack, email: str, password: str) -> Client:
    response = requests.post(
        stack.url("/login"), auth=(email, password), timeout=10, hooks={"response": record_http}
    )
    assert response.status_code == 200, response.text
    return Client(stack, response.json()["access_token"])
