"""Request parameters as the smsgo API reads them (PROTOCOL.md section 1).

Names are case-insensitive (kept lower-case here); values are percent-decoded UTF-8 with ``+``
read as a space; a POST form body wins over the query string; the first occurrence of a name
within one source wins. Undecodable bytes, an oversized body or too many parameters are a
``CgiError``: the caller answers ``-1`` in the endpoint's own format.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from smsgw.errors import CgiError

MAX_FIELDS = 200


def parse_params(query: bytes, body: bytes | None = None) -> dict[str, str]:
    """Merge the query string and an urlencoded body into one lower-cased mapping."""
    params = _parse_source(query)
    if body:
        params.update(_parse_source(body))
    return params


def _parse_source(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise CgiError("undecodable request") from None
    except ValueError:
        raise CgiError("too many parameters") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name.lower(), value)
    return params
