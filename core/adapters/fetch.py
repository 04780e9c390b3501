"""Imports by URL over HTTP: the webhooks' SSRF guard at every hop, at most five redirects,
a connect and a total deadline, and the body read as it arrives, never whole.

Each hop resolves its host once, refuses it unless every address is public (any address with
IMPORT_ALLOW_PRIVATE), and connects only to those addresses (PinnedBackend, against DNS
rebinding); a redirect is a new hop, checked the same way. httpcore follows no redirect on its
own and speaks HTTP/1.1 with h11, which reads a body by its framing, so a Content-Length that
lies can neither stretch nor shorten what is read past what the connection carries."""

from __future__ import annotations

import time
import typing
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import unquote, urljoin, urlsplit

import httpcore

from core.adapters.http import (
    Deadline,
    PinnedBackend,
    Resolver,
    _DeadlineStream,
    _request_url,
    is_public,
    resolve,
)
from core.ports.imports import FetchedBody, Fetcher, FetchError

MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2000
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 256 * 1024


class _ConnectLimitedBackend(PinnedBackend):
    """PinnedBackend whose connection to each address waits at most connect_seconds (within
    the exchange's deadline)."""

    def __init__(self, addresses: list[str], deadline: Deadline, connect_seconds: float):
        super().__init__(addresses, deadline)
        self.connect_seconds = connect_seconds

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError("no approved address")
        for address in self.addresses:
            left = min(self.connect_seconds, self.deadline.left(httpcore.ConnectTimeout))
            try:
                stream = self.backend.connect_tcp(
                    address, port, left, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, self.deadline)
        raise failure


def check_import_url(url: str) -> None:
    """FetchError (url_unreachable) unless url is an http(s) URL with a host, no credentials
    and at most MAX_URL_LENGTH characters."""
    if len(url) > MAX_URL_LENGTH:
        raise FetchError(FetchError.URL_UNREACHABLE, f"the URL is over {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  raises ValueError for a malformed port
    except ValueError:
        raise FetchError(FetchError.URL_UNREACHABLE, "the URL is malformed") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(FetchError.URL_UNREACHABLE, "only http:// and https:// URLs are fetched")
    if parts.username is not None or parts.password is not None:
        raise FetchError(FetchError.URL_UNREACHABLE, "the URL must not carry credentials")


class HttpFetcher(Fetcher):
    def __init__(
        self,
        allow_private: bool = False,
        timeout: float = 3600.0,
        connect_timeout: float = 10.0,
        resolver: Resolver = resolve,
        max_redirects: int = MAX_REDIRECTS,
        address_allowed: typing.Callable[[str], bool] = is_public,
    ):
        self.allow_private = allow_private
        self.address_allowed = address_allowed  # the guard; tests name a loopback "public" one
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.resolver = resolver
        self.max_redirects = max_redirects

    def check(self, url: str) -> None:
        check_import_url(url)

    def _addresses(self, url: str) -> list[str]:
        check_import_url(url)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolver(parts.hostname or "", port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise FetchError(FetchError.URL_UNREACHABLE, f"{parts.hostname} does not resolve")
        if not self.allow_private and not all(self.address_allowed(a) for a in addresses):
            raise FetchError(
                FetchError.FORBIDDEN_ADDRESS,
                f"{parts.hostname} resolves to an address that is not public",
            )
        return addresses

    @contextmanager
    def open(self, url: str) -> Iterator[FetchedBody]:
        deadline = Deadline(self.timeout)
        current = url
        with ExitStack() as stack:
            for _hop in range(self.max_redirects + 1):
                response = self._request(stack, current, deadline)
                location = _header(response, b"location")
                if response.status in REDIRECTS and location:
                    stack.close()  # this hop's connection, before the next one opens
                    current = urljoin(current, location)
                    continue
                if not 200 <= response.status < 300:
                    raise FetchError(
                        FetchError.HTTP_STATUS,
                        f"the server answered {response.status}",
                        status=response.status,
                    )
                yield FetchedBody(
                    total=_length(response),
                    chunks=self._chunks(response),
                    filename=unquote(urlsplit(current).path.rsplit("/", 1)[-1]),
                )
                return
            raise FetchError(
                FetchError.URL_UNREACHABLE, f"more than {self.max_redirects} redirects"
            )

    def _request(self, stack: ExitStack, url: str, deadline: Deadline) -> httpcore.Response:
        addresses = self._addresses(url)  # again at each hop: a redirect may point anywhere
        try:
            request_url, host_header = _request_url(url)
        except (ValueError, UnicodeError):
            raise FetchError(FetchError.URL_UNREACHABLE, "the URL is malformed") from None
        headers = [
            ("Host", host_header),
            ("User-Agent", "vid2mp3-import"),
            ("Accept", "*/*"),
            ("Accept-Encoding", "identity"),
        ]
        timeouts = {name: self.timeout for name in ("connect", "read", "write", "pool")}
        with _translated():
            pool = stack.enter_context(
                httpcore.ConnectionPool(
                    max_connections=1,
                    retries=0,
                    network_backend=_ConnectLimitedBackend(
                        addresses, deadline, self.connect_timeout
                    ),
                )
            )
            return stack.enter_context(
                pool.stream("GET", request_url, headers=headers, extensions={"timeout": timeouts})
            )

    def _chunks(self, response: httpcore.Response) -> Iterator[bytes]:
        with _translated():
            for chunk in response.iter_stream():
                if chunk:
                    yield chunk


@contextmanager
def _translated() -> Iterator[None]:
    """httpcore's failures as the FetchError a job shows."""
    started = time.monotonic()
    try:
        yield
    except httpcore.TimeoutException:
        raise FetchError(
            FetchError.TIMEOUT, f"no complete answer in time ({time.monotonic() - started:.0f} s)"
        ) from None
    except httpcore.ProtocolError:
        raise FetchError(
            FetchError.URL_UNREACHABLE, "the server's answer is not valid HTTP or ended early"
        ) from None
    except (httpcore.NetworkError, OSError):
        raise FetchError(FetchError.URL_UNREACHABLE, "could not connect to the server") from None


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _length(response: httpcore.Response) -> int | None:
    value = _header(response, b"content-length")
    return int(value) if value and value.isdigit() else None
