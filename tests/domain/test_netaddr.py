from __future__ import annotations

from ipaddress import ip_network

import pytest

from smsgw.domain.netaddr import (
    address_allowed,
    client_address,
    parse_allow_list,
    parse_network,
    parse_networks,
)
from smsgw.errors import ConfigError

PROXIES = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))


def test_parse_networks_reads_addresses_as_single_host_networks() -> None:
    """An address alone is a /32 or a /128, and CIDR blocks are kept as given."""
    networks = parse_networks(["192.0.2.7", "2001:db8::1", "198.51.100.0/24"], "http.proxies")
    assert networks == (
        ip_network("192.0.2.7/32"),
        ip_network("2001:db8::1/128"),
        ip_network("198.51.100.0/24"),
    )


@pytest.mark.parametrize("bad", ["", "example.com", "10.0.0.1/8", "300.1.1.1", "1.2.3.4/33"])
def test_parse_networks_names_the_bad_entry(bad: str) -> None:
    """A bad entry raises ConfigError naming the setting and the entry's index."""
    with pytest.raises(ConfigError) as caught:
        parse_networks(["192.0.2.1", bad], "http.trusted_proxies")
    assert caught.value.name == "http.trusted_proxies[1]"


def test_parse_network_rejects_host_bits_after_the_prefix() -> None:
    """A block with host bits set is an error rather than silently widened."""
    with pytest.raises(ValueError, match="not an IP address or CIDR block"):
        parse_network("192.0.2.9/24")


def test_parse_allow_list_normalises_and_merges_duplicates() -> None:
    """The account allow-list is stored normalised, each entry once."""
    assert parse_allow_list([" 192.0.2.1 ", "192.0.2.1/32", "2001:DB8::/32"]) == (
        "192.0.2.1/32",
        "2001:db8::/32",
    )


def test_parse_allow_list_accepts_at_most_five_entries() -> None:
    """Six distinct entries are refused with ValueError."""
    with pytest.raises(ValueError, match="at most 5"):
        parse_allow_list([f"192.0.2.{host}" for host in range(6)])


def test_parse_allow_list_rejects_garbage_with_value_error() -> None:
    """A malformed entry raises ValueError quoting it, for the CLI to show."""
    with pytest.raises(ValueError, match="'nope'"):
        parse_allow_list(["nope"])


def test_client_address_is_the_peer_when_the_peer_is_not_a_trusted_proxy() -> None:
    """X-Forwarded-For from an untrusted peer is ignored."""
    assert client_address("192.0.2.1", "203.0.113.9", PROXIES) == "192.0.2.1"


def test_client_address_is_the_peer_when_no_proxy_is_trusted() -> None:
    """With no trusted proxies the header never counts."""
    assert client_address("10.0.0.1", "203.0.113.9", ()) == "10.0.0.1"


def test_client_address_walks_forwarded_for_from_the_right_past_trusted_hops() -> None:
    """Trusted hops are skipped and the first untrusted address from the right is the client."""
    header = "198.51.100.1, 203.0.113.9, 10.1.1.1"
    assert client_address("10.0.0.1", header, PROXIES) == "203.0.113.9"


def test_client_address_ignores_spoofed_entries_left_of_the_client() -> None:
    """Entries left of the first untrusted hop may be forged by the client and are not used."""
    assert client_address("10.0.0.1", "127.0.0.1, 203.0.113.9", PROXIES) == "203.0.113.9"


def test_client_address_stops_at_garbage_and_uses_the_last_good_address() -> None:
    """A malformed entry ends the walk at the last well-formed hop."""
    header = "203.0.113.9, not-an-ip, 10.2.2.2"
    assert client_address("10.0.0.1", header, PROXIES) == "10.2.2.2"


def test_client_address_is_the_trusted_peer_when_the_header_is_missing() -> None:
    """A trusted proxy that sends no header is itself the client."""
    assert client_address("10.0.0.1", None, PROXIES) == "10.0.0.1"


def test_client_address_is_the_leftmost_when_every_hop_is_trusted() -> None:
    """When all hops are trusted proxies the leftmost one is the best answer."""
    assert client_address("10.0.0.1", "10.9.9.9, fd00::5", PROXIES) == "10.9.9.9"


def test_client_address_reads_ipv4_mapped_peers_as_ipv4() -> None:
    """A dual-stack socket's ::ffff:a.b.c.d peer matches IPv4 proxy networks."""
    assert client_address("::ffff:10.0.0.1", "203.0.113.9", PROXIES) == "203.0.113.9"


def test_client_address_of_no_peer_is_none() -> None:
    """Without a peer address there is no client address, whatever the header says."""
    assert client_address(None, "203.0.113.9", PROXIES) is None


def test_address_allowed_when_the_allow_list_is_empty() -> None:
    """An empty allow-list admits every address, even an unknown one."""
    assert address_allowed("192.0.2.1", ())
    assert address_allowed(None, ())


def test_address_allowed_inside_a_cidr_block_or_exact_address() -> None:
    """An address inside any entry is admitted, whichever IP version."""
    allowed = ("198.51.100.0/24", "2001:db8::1")
    assert address_allowed("198.51.100.200", allowed)
    assert address_allowed("2001:db8::1", allowed)
    assert address_allowed("::ffff:198.51.100.3", allowed)


def test_address_not_allowed_outside_every_entry() -> None:
    """An address outside every entry is refused."""
    assert not address_allowed("198.51.101.1", ("198.51.100.0/24", "2001:db8::1"))


@pytest.mark.parametrize("address", [None, "", "garbage", "198.51.100.1:443"])
def test_address_not_allowed_when_unknown_or_malformed(address: str | None) -> None:
    """A missing or unparseable address never passes a non-empty allow-list."""
    assert not address_allowed(address, ("0.0.0.0/0", "::/0"))


def test_a_corrupt_stored_entry_admits_nobody() -> None:
    """An allow-list entry that does not parse matches no address rather than failing."""
    assert not address_allowed("192.0.2.1", ("corrupt",))
