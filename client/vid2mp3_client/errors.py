"""What can go wrong, each said in one line; the command exits 1."""

from __future__ import annotations


class ClientError(Exception):
    """A failure the user can act on; its text is the whole message."""


class ApiError(ClientError):
    """The API answered with an error: its JSON `message`, or what the response looked like."""

    def __init__(
        self, status: int, message: str, code: str | None = None, retry_after: str | None = None
    ):
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after
        text = f"{message} (HTTP {status})"
        if retry_after:
            text += f"; retry after {retry_after} s"
        super().__init__(text)


class Cancelled(Exception):
    """The user pressed Ctrl-C; work stops at its next checkpoint."""
