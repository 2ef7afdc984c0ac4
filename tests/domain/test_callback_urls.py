from __future__ import annotations

import ipaddress

import pytest

from smsgw.domain.urls import check_callback_url, is_forbidden_address
from smsgw.errors import CgiError

INWARD = [
    "http://127.0.0.1/cb",
    "http://127.1/cb",
    "http://2130706433/cb",
    "http://0x7f.0.0.1/cb",
    "http://[::1]/cb",
    "http://[::ffff:127.0.0.1]/cb",
    "http://10.0.0.1/cb",
    "http://10.255.255.255:8080/cb",
    "http://172.16.0.1/cb",
    "http://192.168.1.1/cb",
    "http://169.254.169.254/latest/meta-data",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://localhost/cb",
    "http://LOCALHOST.:8000/cb",
    "http://api.localhost/cb",
]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/cb",
        "https://example.com:8443/cb?a=1&b=2",
        "HTTPS://Example.com/",
        "http://8.8.8.8/",
        "http://[2001:4860:4860::8888]/",
        "http://beef.cafe/",
        "http://localhost.example.com/",
    ],
)
def test_public_urls_are_accepted(url: str) -> None:
    """http and https URLs to public hosts or names are returned unchanged."""
    assert check_callback_url(url, "response", 1024, allow_private=False) == url


@pytest.mark.parametrize("url", INWARD)
def test_inward_addresses_are_refused(url: str) -> None:
    """Loopback, private, link-local, metadata and similar literals are refused by name."""
    with pytest.raises(CgiError) as caught:
        check_callback_url(url, "replyurl", 300, allow_private=False)
    assert caught.value.detail == "replyurl"


@pytest.mark.parametrize("url", INWARD)
def test_inward_addresses_are_allowed_when_the_operator_allows(url: str) -> None:
    """allow_private lets callbacks reach private and loopback addresses."""
    assert check_callback_url(url, "response", 1024, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "javascript:alert(1)",
        "example.com/cb",
        "http:///cb",
        "http://example.com:99999/",
        "http://example.com/a b",
        "http://example.com/\r\nX: y",
        "http://exa\tmple.com/",
        "",
    ],
)
def test_malformed_urls_are_refused_even_when_private_is_allowed(url: str) -> None:
    """Only well-formed http(s) URLs with a host and no blanks pass."""
    with pytest.raises(CgiError) as caught:
        check_callback_url(url, "response", 1024, allow_private=True)
    assert caught.value.detail == "response"


def test_length_limit() -> None:
    """A URL longer than max_length is refused; one of exactly max_length passes."""
    base = "http://example.com/"
    exact = base + "a" * (300 - len(base))
    assert check_callback_url(exact, "replyurl", 300, allow_private=False) == exact
    with pytest.raises(CgiError):
        check_callback_url(exact + "a", "replyurl", 300, allow_private=False)


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("100.64.0.1", True),
        ("169.254.169.254", True),
        ("::1", True),
        ("::ffff:10.0.0.1", True),
        ("fd00:ec2::254", True),
        ("ff02::1", True),
        ("93.184.216.34", False),
        ("::ffff:93.184.216.34", False),
        ("2606:4700::1111", False),
    ],
)
def test_is_forbidden_address(address: str, forbidden: bool) -> None:
    """Resolved addresses are judged like literals, IPv4-mapped IPv6 by its IPv4 address."""
    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden


def test_a_remembered_verdict_still_depends_on_every_argument() -> None:
    """Accepted URLs are remembered, but by all the arguments: the same private URL is
    refused without allow_private right after it was accepted with it, every time."""
    url = "http://10.1.2.3/dlr"
    assert check_callback_url(url, "response", 256, allow_private=True) == url
    for _ in range(2):
        with pytest.raises(CgiError):
            check_callback_url(url, "response", 256, allow_private=False)
        with pytest.raises(CgiError):
            check_callback_url(url, "response", 10, allow_private=True)
