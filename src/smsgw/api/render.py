"""Reply bodies in the three formats of the smsgo API (PROTOCOL.md sections 3 and 5).

Text replies of sendsms and cancel end every line with ``\\n``; the query replies carry no
final line end and join bulk rows with ``\\r\\n``. JSON and XML follow the document's member
names: ``statuscode`` in send and point replies, ``statusCode``/``statusStr``/``cellphone`` in
query rows. Every function returns ``(body, content_type)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from xml.sax.saxutils import escape

import orjson

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
XML = "application/xml"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'

# Echoed input (a number, a detail) must not forge a line or a field of a text reply, nor
# carry a character that XML 1.0 forbids.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029\ufffe\uffff]")
_FIELD_BREAKING = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029\ufffe\uffff|]")


class Format(Enum):
    TEXT = "text"
    JSON = "json"
    XML = "xml"

    @classmethod
    def from_rtype(cls, rtype: str | None) -> Format:
        value = (rtype or "").strip().upper()
        if value == "JSON":
            return cls.JSON
        if value == "XML":
            return cls.XML
        return cls.TEXT


@dataclass(frozen=True, slots=True)
class SendReply:
    """The reply of sendsms and sendsms_cancel: on error msgid is the code and point is 0."""

    msgid: int
    statuscode: int
    statusstr: str
    point: int


@dataclass(frozen=True, slots=True)
class QueryRow:
    """One row of query.asp / queryBulk.asp; ``msgid`` None shows as an empty field."""

    statuscode: int
    statusstr: str
    number: str
    msgid: int | None = None


Rendered = tuple[bytes, str]


def send_reply(reply: SendReply, fmt: Format) -> Rendered:
    if fmt is Format.JSON:
        body = {
            "result": {
                "msgid": reply.msgid,
                "statuscode": str(reply.statuscode),
                "statusstr": reply.statusstr,
                "point": reply.point,
            }
        }
        return orjson.dumps(body), JSON
    if fmt is Format.XML:
        xml = (
            f"{XML_DECL}<result><msgid>{reply.msgid}</msgid>"
            f"<statuscode>{reply.statuscode}</statuscode>"
            f"<statusstr>{_xml_text(reply.statusstr)}</statusstr>"
            f"<point>{reply.point}</point></result>"
        )
        return xml.encode(), XML
    statusstr = _CONTROL.sub("", reply.statusstr)
    text = (
        f"msgid={reply.msgid}\nstatuscode={reply.statuscode}\n"
        f"statusstr={statusstr}\npoint={reply.point}\n"
    )
    return text.encode(), TEXT


def query_rows(rows: list[QueryRow], fmt: Format, *, bulk: bool) -> Rendered:
    if fmt is Format.JSON:
        items = [_row_dict(row, bulk=bulk) for row in rows]
        return orjson.dumps({"results": {"result": items}}), JSON
    if fmt is Format.XML:
        parts = [_row_xml(row, bulk=bulk) for row in rows]
        return f"{XML_DECL}<results>{''.join(parts)}</results>".encode(), XML
    lines = [_row_text(row, bulk=bulk) for row in rows]
    return "\r\n".join(lines).encode(), TEXT


def point_reply(statuscode: int, point: int, fmt: Format) -> Rendered:
    shown = point if statuscode == 0 else 0
    if fmt is Format.JSON:
        body = {"results": {"result": [{"statuscode": str(statuscode), "point": str(shown)}]}}
        return orjson.dumps(body), JSON
    if fmt is Format.XML:
        xml = (
            f"{XML_DECL}<results><result><statuscode>{statuscode}</statuscode>"
            f"<point>{shown}</point></result></results>"
        )
        return xml.encode(), XML
    return str(point if statuscode == 0 else statuscode).encode(), TEXT


def _row_dict(row: QueryRow, *, bulk: bool) -> dict[str, object]:
    item: dict[str, object] = {
        "statusCode": str(row.statuscode),
        "statusStr": row.statusstr,
        "cellphone": row.number,
    }
    if bulk:
        item["msgid"] = row.msgid
    return item


def _row_xml(row: QueryRow, *, bulk: bool) -> str:
    fields = _row_dict(row, bulk=bulk)
    inner = "".join(
        f"<{name}>{'' if value is None else _xml_text(str(value))}</{name}>"
        for name, value in fields.items()
    )
    return f"<result>{inner}</result>"


def _xml_text(value: str) -> str:
    """Escaped, without the control characters XML 1.0 cannot carry at all."""
    return escape(_CONTROL.sub("", value))


def _row_text(row: QueryRow, *, bulk: bool) -> str:
    statusstr = _FIELD_BREAKING.sub("", row.statusstr)
    text = f"{row.statuscode}|{statusstr}|{_FIELD_BREAKING.sub('', row.number)}"
    if bulk:
        text += f"|{'' if row.msgid is None else row.msgid}"
    return text
