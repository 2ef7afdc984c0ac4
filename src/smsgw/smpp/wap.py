"""WAP Push Service Indication (WAP-167 SI 1.0) as WSP connectionless push bytes.

The result is the payload an 8-bit SMS carries to WDP port 2948: a WSP push PDU (WAP-230
section 8.2.4) whose body is the SI document in WBXML 1.2 (WAP-192), tokenised with the SI
code page of WAP-167 section 8.3:

    tags         05 si, 06 indication (0x40: has content, 0x80: has attributes)
    attributes   07 action="signal-medium", 0B href, 0C href="http://", 0D href="http://www.",
                 0E href="https://", 0F href="https://www."
    values       85 ".com/", 86 ".edu/", 87 ".net/", 88 ".org/"
    global       01 END, 03 inline string (NUL-terminated UTF-8)
"""

from __future__ import annotations

from typing import Final

WSP_PUSH: Final = 0x06
# Content-Type in the general form: length 3, application/vnd.wap.sic (0x2E | 0x80), then the
# well-known parameter Charset (0x01 | 0x80) = UTF-8 (MIBenum 106 = 0x6A, | 0x80).
WSP_CONTENT_TYPE_SIC_UTF8: Final = bytes([0x03, 0xAE, 0x81, 0xEA])

WBXML_VERSION_1_2: Final = 0x02
PUBLIC_ID_SI_1_0: Final = 0x05
CHARSET_UTF8: Final = 0x6A
EMPTY_STRING_TABLE: Final = 0x00

END: Final = 0x01
STR_I: Final = 0x03
TAG_SI: Final = 0x05
TAG_INDICATION: Final = 0x06
HAS_CONTENT: Final = 0x40
HAS_ATTRIBUTES: Final = 0x80
ACTION_SIGNAL_MEDIUM: Final = 0x07
HREF: Final = 0x0B

# Longest prefix first, so "http://www." wins over "http://".
HREF_PREFIXES: Final = (
    ("https://www.", 0x0F),
    ("https://", 0x0E),
    ("http://www.", 0x0D),
    ("http://", 0x0C),
)
HREF_VALUE_TOKENS: Final = {".com/": 0x85, ".edu/": 0x86, ".net/": 0x87, ".org/": 0x88}
DEFAULT_SCHEME: Final = "http://"


def si_push(title: str, href: str, transaction_id: int) -> bytes:
    """The WSP push PDU carrying an SI that shows ``title`` and links to ``href``."""
    headers = WSP_CONTENT_TYPE_SIC_UTF8
    # The headers length is a uintvar; the fixed headers are far below 128, so one octet.
    wsp = bytes([transaction_id & 0xFF, WSP_PUSH, len(headers)]) + headers
    return wsp + si_document(title, href)


def si_document(title: str, href: str) -> bytes:
    """``<si><indication href=.. action="signal-medium">title</indication></si>`` in WBXML."""
    header = bytes([WBXML_VERSION_1_2, PUBLIC_ID_SI_1_0, CHARSET_UTF8, EMPTY_STRING_TABLE])
    indication = TAG_INDICATION | HAS_ATTRIBUTES | (HAS_CONTENT if title else 0)
    body = bytearray([TAG_SI | HAS_CONTENT, indication])
    body += href_attribute(href)
    body += bytes([ACTION_SIGNAL_MEDIUM, END])
    if title:
        body += inline_string(title) + bytes([END])
    body += bytes([END])
    return header + bytes(body)


def href_attribute(href: str) -> bytes:
    """The href attribute start token and its value, with prefix and domain tokens."""
    url = href if "://" in href else DEFAULT_SCHEME + href
    for prefix, token in HREF_PREFIXES:
        if url.startswith(prefix):
            return bytes([token]) + href_value(url[len(prefix) :])
    return bytes([HREF]) + href_value(url)


def href_value(rest: str) -> bytes:
    """``rest`` as inline strings, each ``.com/``-like part replaced by its value token."""
    out = bytearray()
    start = 0
    while (found := _next_value_token(rest, start)) is not None:
        position, suffix = found
        out += inline_string(rest[start:position])
        out.append(HREF_VALUE_TOKENS[suffix])
        start = position + len(suffix)
    out += inline_string(rest[start:])
    return bytes(out)


def inline_string(text: str) -> bytes:
    """A WBXML inline string; empty text gives nothing, a NUL would end it so it is dropped."""
    if not text:
        return b""
    return bytes([STR_I]) + text.replace("\0", "").encode("utf-8", "replace") + b"\0"


def _next_value_token(text: str, start: int) -> tuple[int, str] | None:
    """The earliest ``.com/``-like suffix in ``text`` from ``start``, with its position."""
    hits = [(text.find(suffix, start), suffix) for suffix in HREF_VALUE_TOKENS]
    found = [(position, suffix) for position, suffix in hits if position >= 0]
    return min(found) if found else None
