"""Webhook deliveries over HTTP: Standard Webhooks signatures, a 10 s timeout, no redirects,
and an SSRF guard that refuses any receiver resolving to a non-public address."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from standardwebhooks.webhooks import Webhook

from core.domain import InvalidInput
from core.ports import WebhookError, WebhookSender

Resolver = Callable[[str, int], list[str]]


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


class HttpWebhookSender(WebhookSender):
    def __init__(
        self, allow_private: bool = False, timeout: float = 10.0, resolver: Resolver = resolve
    ):
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolver = resolver

    def check_url(self, url: str) -> None:
        check_url(url, self.allow_private, self.resolver)

    def send(self, url: str, secret: str, msg_id: str, body: str) -> int:
        try:
            # Checked again at each delivery: the name may resolve elsewhere by now.
            check_url(url, self.allow_private, self.resolver)
        except InvalidInput as exc:
            raise WebhookError(exc.message) from None
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "vid2mp3-webhooks",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        }
        try:
            with requests.Session() as session:
                session.trust_env = False  # no proxy from the environment
                response = session.post(
                    url,
                    data=body.encode(),
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
                response.close()
                return int(response.status_code)
        except requests.Timeout:
            raise WebhookError(f"no answer within {self.timeout:g} s") from None
        except requests.RequestException:
            raise WebhookError("could not connect") from None
