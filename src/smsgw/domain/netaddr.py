"""IP networks: trusted proxies, the client address behind them, and account allow-lists.

Pure: no sockets, no DNS. An address alone is a network of one (/32 or /128). An IPv4 address
seen through a dual-stack socket (``::ffff:192.0.2.1``) is read as the IPv4 address it carries.

Two parsers, one per caller:
- ``parse_networks`` for configuration: a bad entry raises ``ConfigError`` naming the setting.
- ``parse_allow_list`` for an account's allow-list (the CLI): a bad entry raises ``ValueError``
  whose message quotes the entry (an address is not a secret).
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING

from smsgw.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

MAX_ALLOWED_IPS = 5  # PROTOCOL.md section 7


def parse_network(value: str) -> Network:
    """One address or CIDR block; host bits set after the prefix are an error (ValueError)."""
    text = value.strip()
    if not text:
        raise ValueError("empty address")
    try:
        return ip_network(text, strict=True)
    except ValueError:
        raise ValueError(f"not an IP address or CIDR block: {text!r}") from None


def parse_networks(values: Sequence[str], name: str) -> tuple[Network, ...]:
    """Every entry of a configuration list; the error names the entry, e.g. ``name[2]``."""
    networks: list[Network] = []
    for index, value in enumerate(values):
        try:
            networks.append(parse_network(value))
        except ValueError as error:
            raise ConfigError(f"{name}[{index}]", str(error)) from None
    return tuple(networks)


def parse_allow_list(values: Sequence[str]) -> tuple[str, ...]:
    """An account's allow-list in normalised form; at most 5 entries, duplicates merged."""
    normalised = tuple(dict.fromkeys(str(parse_network(value)) for value in values))
    if len(normalised) > MAX_ALLOWED_IPS:
        raise ValueError(f"at most {MAX_ALLOWED_IPS} addresses or blocks are allowed")
    return normalised


def parse_address(value: str) -> Address | None:
    """An address, with IPv4-mapped IPv6 read as IPv4; None when it is not an address."""
    try:
        address = ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` (several headers joined with commas) is read
    from the right: trusted hops are skipped and the first untrusted address is the client.
    A malformed entry stops the walk at the last good address, since whatever lies to the
    left of garbage may have been written by the client itself.
    """
    if peer is None:
        return None
    peer_address = parse_address(peer)
    if peer_address is None or not _in_any(peer_address, trusted):
        return peer
    last_good = str(peer_address)
    for entry in reversed(forwarded_for.split(",") if forwarded_for else []):
        hop = parse_address(entry)
        if hop is None:
            break
        last_good = str(hop)
        if not _in_any(hop, trusted):
            break
    return last_good


def address_allowed(address: str | None, allowed: Sequence[str]) -> bool:
    """True when the allow-list is empty or the address lies in one of its entries."""
    if not allowed:
        return True
    parsed = parse_address(address) if address is not None else None
    if parsed is None:
        return False
    networks = (_cached_network(entry) for entry in allowed)
    return any(network is not None and parsed in network for network in networks)


def _in_any(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


@lru_cache(maxsize=4096)
def _cached_network(value: str) -> Network | None:
    # Stored allow-lists were validated when written; an entry that no longer parses admits
    # nobody rather than failing the request.
    try:
        return ip_network(value.strip(), strict=False)
    except ValueError:
        return None
