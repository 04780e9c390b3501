"""An HTTP client of the API for end-to-end and fault tests."""

from __future__ import annotations

import requests

from tests.support.api_statuses import record_http


class Client:
    """The API as a user reaches it: over HTTP, with a Bearer token."""

    def __init__(self, stack, token: str | None = None):
        self.stack = stack
        self.session = requests.Session()
        self.session.hooks["response"].append(record_http)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __getattr__(self, method):
        call = getattr(self.session, method)
        return lambda path, **kw: call(self.stack.url(path), timeout=kw.pop("timeout", 30), **kw)


def login(stack, email: str, password: str) -> Client:
    response = requests.post(
        stack.url("/login"), auth=(email, password), timeout=10, hooks={"response": record_http}
    )
    assert response.status_code == 200, response.text
    return Client(stack, response.json()["access_token"])
