"""Fetching a video from a URL for an import (POST /jobs): the port, and why a fetch failed."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Iterator


class FetchError(Exception):
    """Why a fetch failed, as the job's `error` says it: `code` is one of the names below,
    `message` the words after it (`http_status: the server answered 404`)."""

    URL_UNREACHABLE = "url_unreachable"
    HTTP_STATUS = "http_status"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    NOT_MEDIA = "not_media"
    FORBIDDEN_ADDRESS = "forbidden_address"

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status  # the HTTP status, for http_status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass
class FetchedBody:
    """An answer being read: the size the server announced (None when it did not) and its
    body, chunk by chunk (FetchError when the deadline passes or the connection breaks)."""

    total: int | None
    chunks: Iterator[bytes]
    filename: str  # the last segment of the final URL's path, or "" when it has none


class Fetcher(abc.ABC):
    """Opens a URL for reading: only http and https, no credentials, every address and
    redirect checked, one deadline over the whole download."""

    @abc.abstractmethod
    def check(self, url: str) -> None:
        """FetchError unless the URL is one this fetcher would try (scheme, host, no
        credentials); names are not resolved here."""

    @abc.abstractmethod
    def open(self, url: str) -> AbstractContextManager[FetchedBody]:
        """The answer of the URL (redirects followed), its connection released when the block
        ends; FetchError when it cannot be had."""
