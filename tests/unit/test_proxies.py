"""The client address behind trusted reverse proxies (server.kernel.proxies)."""

from __future__ import annotations

from server.kernel.proxies import client_address

PROXIES = ["127.0.0.1/32", "10.0.0.0/8"]


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", "203.0.113.5", []) == "127.0.0.1"


def test_a_peer_that_is_not_a_proxy_is_the_client() -> None:
    assert client_address("198.51.100.1", "203.0.113.5", PROXIES) == "198.51.100.1"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    # the client forged a left-most entry; the proxies appended the real address and theirs
    header = "1.2.3.4, 203.0.113.5, 10.1.2.3"
    assert client_address("127.0.0.1", header, PROXIES) == "203.0.113.5"


def test_a_chain_of_only_proxies_falls_back_to_the_peer() -> None:
    assert client_address("127.0.0.1", "10.0.0.1, 10.0.0.2", PROXIES) == "127.0.0.1"


def test_a_malformed_hop_is_not_believed() -> None:
    assert client_address("127.0.0.1", "203.0.113.5, not-an-ip", PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", "", PROXIES) == "127.0.0.1"


def test_ipv6() -> None:
    assert client_address("::1", "2001:db8::7", ["::1/128"]) == "2001:db8::7"
