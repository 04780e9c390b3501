"""The client's address: X-Forwarded-For counts only on connections from a trusted proxy.

werkzeug's ProxyFix believes the header from whoever sends it; gunicorn believes its own
forwarded headers only from FORWARDED_ALLOW_IPS. This applies ProxyFix under the same rule, so
a client that reaches the API past the proxy keeps its own address (and cannot pick a new one
per request to dodge the login throttle)."""

from __future__ import annotations

import ipaddress
from typing import Any, Callable, Iterable

from werkzeug.middleware.proxy_fix import ProxyFix

from core.settings import IPNetwork


class TrustedProxyFix:
    """WSGI middleware: ProxyFix (x_for, x_proto = hops) when the peer is in `networks`
    (None: any peer), the request untouched otherwise."""

    def __init__(self, app: Callable[..., Any], hops: int, networks: list[IPNetwork] | None):
        self.app = app
        self.behind_proxy = ProxyFix(app, x_for=hops, x_proto=hops)
        self.networks = networks

    def trusts(self, peer: str | None) -> bool:
        if self.networks is None:
            return True
        return peer_in(peer, self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.behind_proxy(environ, start_response)
        return self.app(environ, start_response)


def peer_in(peer: str | None, networks: Iterable[IPNetwork]) -> bool:
    """Whether an address (an IPv4-mapped IPv6 one counts as its IPv4) is in one of networks."""
    try:
        address = ipaddress.ip_address((peer or "").strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
