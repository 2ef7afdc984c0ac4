"""Callback targets (``response``, ``replyurl``): checked when a request arrives (PROTOCOL.md 3).

Only literal addresses are judged here; a host name is resolved and judged again with
:func:`is_forbidden_address` at each callback, so a name that points inwards later is
still refused then.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from typing import Final
from urllib.parse import SplitResult, urlsplit

from smsgw.errors import CgiError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES: Final = frozenset({"http", "https"})
METADATA_ADDRESSES: Final = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
# Resolvers also read the shorthand IPv4 forms inet_aton accepts (127.1, 0x7f.0.0.1,
# 2130706433); a host made of these characters is tried as one.
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


# A customer's code sends the same callback URL with every request: the verdict on an
# accepted URL is remembered (refusals are not cached, and are judged each time). It cost
# about a tenth of the API's CPU per sendsms (py-spy, bench/e2e.py).
CHECKED_URLS_CACHED: Final = 1024


@functools.lru_cache(maxsize=CHECKED_URLS_CACHED)
def check_callback_url(value: str, name: str, max_length: int, allow_private: bool) -> str:
    """``value`` when it is an acceptable callback URL, else ``CgiError(detail=name)``."""
    if len(value) > max_length or _WHITESPACE_OR_CONTROL.search(value):
        raise CgiError(detail=name)
    parts = _split(value, name)
    host = parts.hostname or ""
    address = _literal_address(host)
    refused = _is_local_name(host) or (address is not None and is_forbidden_address(address))
    if refused and not allow_private:
        raise CgiError(detail=name)
    return value


def is_forbidden_address(ip: IPAddress) -> bool:
    """Whether a callback must not reach ``ip``: loopback, private, link-local, metadata, ..."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_forbidden_address(ip.ipv4_mapped)
    return (
        ip in METADATA_ADDRESSES
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_multicast
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
        or not ip.is_global
    )


def _split(value: str, name: str) -> SplitResult:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (reading it validates the port)
    except ValueError:
        raise CgiError(detail=name) from None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise CgiError(detail=name)
    return parts


def _literal_address(host: str) -> IPAddress | None:
    bare = host.rstrip(".")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not _LEGACY_IPV4.fullmatch(bare):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def _is_local_name(host: str) -> bool:
    bare = host.rstrip(".").lower()
    return bare == "localhost" or bare.endswith(".localhost")
