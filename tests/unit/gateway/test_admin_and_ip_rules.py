"""Who reaches the admin APIs, and IP rules for IPv4 clients of a dual-stack listener."""

from __future__ import annotations

import pytest

from unkai.config.http_api import IpRules
from unkai.gateway.app import _is_loopback


@pytest.mark.parametrize(
    ("client", "loopback"),
    [
        (("127.0.0.1", 5000), True),
        (("127.8.9.10", 5000), True),
        (("::1", 5000), True),
        (("::ffff:127.0.0.1", 5000), True),
        (None, True),
        (("10.0.0.5", 5000), False),
        (("::ffff:10.0.0.5", 5000), False),
        (("2001:db8::1", 5000), False),
    ],
)
def test_only_loopback_clients_count_as_local(
    client: tuple[str, int] | None, loopback: bool
) -> None:
    assert _is_loopback(client) is loopback


def test_ipv4_mapped_addresses_meet_ipv4_rules() -> None:
    rules = IpRules(deny=("10.0.0.0/8",))
    assert not rules.permits("::ffff:10.1.2.3")
    assert rules.permits("::ffff:192.168.1.1")
    assert IpRules(allow=("192.168.0.0/16",)).permits("::ffff:192.168.1.1")
    assert not rules.permits("not an address")
