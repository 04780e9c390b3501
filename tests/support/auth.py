"""Signing in through Flask's test client, as an API client would: Basic headers and users."""

from __future__ import annotations

import base64
import itertools

_counter = itertools.count(1)


def basic(email: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


class Auth:
    """Logs in and creates users through the API, as a client would."""

    def __init__(self, client, settings):
        self.client = client
        self.settings = settings

    def token(self, email: str, password: str) -> str:
        response = self.client.post("/login", headers=basic(email, password))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]

    def headers(self, email: str, password: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(email, password)}"}

    def admin(self) -> dict[str, str]:
        return self.headers(self.settings.admin_email, self.settings.admin_password)

    def new_user(self, **fields) -> tuple[dict, dict[str, str]]:
        """Create a user as admin; return its JSON and Bearer headers."""
        n = next(_counter)
        data = {
            "name": f"user{n}",
            "email": f"user{n}@example.com",
            "password": "password-1",
            **fields,
        }
        response = self.client.post("/users", json=data, headers=self.admin())
        assert response.status_code == 201, response.get_json()
        return response.get_json(), self.headers(data["email"], data["password"])
