"""The webhook SSRF guard against every address class, in IPv4 and IPv6, in decimal, hex and
short notations, and names resolving to loopback (the system resolver on literal forms)."""

from __future__ import annotations

import pytest

from core.adapters.http import check_url, is_public
from core.domain.errors import InvalidInput

REFUSED = [
    "http://127.0.0.1/",
    "http://127.255.255.254/",
    "http://localhost/",
    "http://localhost./",
    "http://2130706433/",  # 127.0.0.1 in decimal
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",  # hex, octal, short forms
    "http://0.0.0.0/",
    "http://0/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",  # private
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://100.64.0.1/",  # shared address space (CGNAT)
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",  # multicast, reserved
    "http://192.0.2.1/",
    "http://198.18.0.1/",  # documentation, benchmarking
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",  # IPv4-mapped loopback, mixed/hex
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a00:1]/",  # mapped metadata, NAT64
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[ff02::1]/",
    "http://[2001:db8::1]/",  # multicast, documentation
]
ACCEPTED = [
    "http://8.8.8.8/hook",
    "https://1.1.1.1:8443/x",
    "http://[2606:4700:4700::1111]/",
    "http://134744072/",
]  # 8.8.8.8 in decimal


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_receivers_are_refused(url):
    with pytest.raises(InvalidInput):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", REFUSED[:3])
def test_private_receivers_pass_when_allowed(url):
    assert check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_receivers_are_accepted(url):
    assert check_url(url, allow_private=False)


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    def resolver(host, port):
        return {
            "mixed.example": ["8.8.8.8", "10.1.2.3"],
            "public.example": ["8.8.8.8", "2606:4700:4700::1111"],
            "rebound.example": ["127.0.0.1"],
        }[host]

    assert check_url("https://public.example/", False, resolver)
    for host in ("mixed.example", "rebound.example"):
        with pytest.raises(InvalidInput):
            check_url(f"https://{host}/", False, resolver)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://8.8.8.8/",
        "file:///etc/passwd",
        "gopher://8.8.8.8/",
        "http:///nohost",
        "http://user:pw@8.8.8.8/",
        "8.8.8.8",
        "http://[::1/",
        "http://no-such-host.invalid/",
    ],
)
def test_other_schemes_and_malformed_urls_are_refused(url):
    with pytest.raises(InvalidInput):
        check_url(url, allow_private=True)


def test_is_public_reads_scoped_addresses():
    assert not is_public("fe80::1%eth0")


def test_the_retry_schedule_doubles_to_an_hour_and_covers_a_day():
    from core.services.webhooks import retry_schedule

    delays = retry_schedule(30.0)
    assert delays[:4] == [30.0, 60.0, 120.0, 240.0] and max(delays) == 3600.0
    assert sum(delays[:-1]) < 24 * 3600 <= sum(delays)


def test_a_delivery_waiting_its_turn_comes_back_soon_then_less_often():
    from core.services.webhooks import turn_delay

    assert [turn_delay(n, 10.0) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert turn_delay(30, 60.0) == 30.0 and turn_delay(0, 0.5) == 1.0
