"""Webhook deliveries over HTTP: Standard Webhooks signatures, no redirects, and an SSRF guard
that refuses any receiver resolving to a non-public address.

The connection goes to the addresses the guard approved, never to a second resolution of the
name (DNS rebinding); the Host header and the TLS server name stay the URL's, so certificates
are checked as usual. One deadline bounds the whole exchange (connect, TLS, request, answer),
and at most RESPONSE_READ_LIMIT bytes of the answer's body are read.

httpcore speaks HTTP/1.1 here: its network backend is the documented seam where both the
pinned address and the deadline fit (requests/urllib3 resolve the name themselves and bound
each socket read, not the exchange)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpcore
from standardwebhooks.webhooks import Webhook

from core.domain.errors import InvalidInput
from core.ports.webhooks import WebhookError, WebhookSender

Resolver = Callable[[str, int], list[str]]
# The receiver's answer is read this far and no further: only its status is kept.
RESPONSE_READ_LIMIT = 16 * 1024
# Characters sent as they are in the request target; anything else is percent-encoded.
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (inet_aton forms included)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_public(address: str) -> bool:
    """Globally routable unicast: not loopback, private, link-local (cloud metadata),
    shared (CGNAT), multicast, reserved or unspecified, in IPv4 or IPv6 clothing."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public(str(embedded)):
            return False
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return is_public(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    return bool(ip.is_global and not ip.is_multicast)


def check_url(url: str, allow_private: bool, resolver: Resolver = resolve) -> list[str]:
    """The addresses url's host resolves to; InvalidInput unless it is an http(s) URL whose
    every address is public (any address when allow_private)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("the webhook URL is malformed") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the webhook URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise InvalidInput("the webhook URL must not carry credentials")
    try:
        addresses = resolver(parts.hostname, port)
    except (OSError, UnicodeError):
        raise InvalidInput("the webhook URL's host does not resolve") from None
    if not addresses:
        raise InvalidInput("the webhook URL's host does not resolve")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise InvalidInput("the webhook URL must resolve only to public addresses")
    return addresses


class Deadline:
    """The end of one exchange; each network step may wait only for what is left of it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, timeout_class: type[httpcore.TimeoutException]) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise timeout_class(f"past the {self.seconds:g} s deadline")
        return remaining


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose reads, writes and TLS handshake end at the exchange's deadline, so a
    receiver trickling a byte at a time cannot stretch it."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.left(httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.left(httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to the approved addresses, in turn, whatever host name it is asked for."""

    def __init__(
        self,
        addresses: list[str],
        deadline: Deadline,
        backend: httpcore.NetworkBackend | None = None,
    ):
        self.addresses = addresses
        self.deadline = deadline
        self.backend = backend or httpcore.SyncBackend()

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
            left = self.deadline.left(httpcore.ConnectTimeout)
            try:
                stream = self.backend.connect_tcp(
                    address, port, left, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, self.deadline)
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _request_url(url: str) -> tuple[httpcore.URL, str]:
    """The request's URL with an ASCII host, and its Host header (brackets of an IPv6
    literal and a non-default port included), both from the URL the guard checked."""
    parts = urlsplit(url)
    host = (parts.hostname or "").encode("idna")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host_header = netloc.encode("idna").decode() if not netloc.isascii() else netloc
    request_url = httpcore.URL(
        scheme=parts.scheme.encode(), host=host, port=port, target=target.encode()
    )
    return request_url, host_header


class HttpWebhookSender(WebhookSender):
    def __init__(
        self,
        allow_private: bool = False,
        timeout: float = 10.0,
        resolver: Resolver = resolve,
        ssl_context: ssl.SSLContext | None = None,
        response_limit: int = RESPONSE_READ_LIMIT,
    ):
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolver = resolver
        self.ssl_context = ssl_context  # None: the system's trust store via certifi
        self.response_limit = response_limit

    def check_url(self, url: str) -> None:
        check_url(url, self.allow_private, self.resolver)

    def send(self, url: str, secret: str, msg_id: str, body: str) -> int:
        deadline = Deadline(self.timeout)
        try:
            # Checked again at each delivery: the name may resolve elsewhere by now. The
            # addresses approved here are the only ones the connection may use.
            addresses = check_url(url, self.allow_private, self.resolver)
            request_url, host_header = _request_url(url)
        except InvalidInput as exc:
            raise WebhookError(exc.message) from None
        except (ValueError, UnicodeError):
            raise WebhookError("the webhook URL is malformed") from None
        now = datetime.now(UTC)
        headers = [
            ("Host", host_header),
            ("Content-Type", "application/json"),
            ("User-Agent", "vid2mp3-webhooks"),
            ("Accept-Encoding", "identity"),
            ("webhook-id", msg_id),
            ("webhook-timestamp", str(int(now.timestamp()))),
            ("webhook-signature", Webhook(secret).sign(msg_id, now, body)),
        ]
        timeouts = {name: self.timeout for name in ("connect", "read", "write", "pool")}
        try:
            with httpcore.ConnectionPool(
                ssl_context=self.ssl_context,
                max_connections=1,
                retries=0,
                network_backend=PinnedBackend(addresses, deadline),
            ) as pool:
                with pool.stream(
                    "POST",
                    request_url,
                    headers=headers,
                    content=body.encode(),
                    extensions={"timeout": timeouts},
                ) as response:
                    self._discard_body(response)
                    return int(response.status)
        except httpcore.TimeoutException:
            raise WebhookError(f"no answer within {self.timeout:g} s") from None
        except httpcore.ProtocolError:
            raise WebhookError("the receiver's answer is not valid HTTP") from None
        except (httpcore.NetworkError, OSError):
            raise WebhookError("could not connect") from None

    def _discard_body(self, response: httpcore.Response) -> None:
        """Read a little of the answer's body, so a receiver that writes a short one ends
        cleanly; past the limit the connection is closed unread."""
        seen = 0
        for chunk in response.iter_stream():
            seen += len(chunk)
            if seen >= self.response_limit:
                return
