"""The OpenAPI 3.1 document of the smsgo API (PROTOCOL.md sections 1, 3 and 5).

Built once from a table of the five endpoints: every path and its alias, by GET (query string)
and by POST (``application/x-www-form-urlencoded`` body, ``rtype`` also in the query string).
Every answer in the protocol's format is HTTP 200; its body is plain text, JSON or XML as
``rtype`` asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

Schema = dict[str, Any]

_STRING: Final[Schema] = {"type": "string"}
_COMMON: Final = {
    "username": "Account name.",
    "password": "Login password, or the API key once the account has one.",
    "rtype": "Reply format: JSON, XML, anything else or absent for plain text.",
}


@dataclass(frozen=True, slots=True)
class _Operation:
    paths: tuple[str, ...]
    summary: str
    parameters: dict[str, str]
    json_reply: str


_SEND_PARAMETERS: Final = {
    "dstaddr": "Destination numbers, comma-separated (at most 50).",
    "smbody": "Message text.",
    "encoding": "ASCII, BIG5, UCS2, PASCII, PBIG5, LASCII, LBIG5, LUCS2 or PUSH (default BIG5).",
    "dlvtime": "Send time, YYYY/MM/DD hh:mm:ss in Asia/Taipei; absent or past sends at once.",
    "wapurl": "The link of a PUSH message.",
    "response": "Delivery report URL (http/https, at most 1,024 characters).",
    "replyurl": "Handset reply URL (http/https, at most 300 characters).",
    "replydays": "Days a reply is routed to replyurl (1-30, default 3).",
}

_OPERATIONS: Final = (
    _Operation(
        ("/sms_gw/sendsms.aspx", "/sms_gw/sendsms.asp"),
        "Send one message to one or more numbers",
        _SEND_PARAMETERS,
        "SendReply",
    ),
    _Operation(
        ("/sms_gw/query.asp", "/sms_gw/query.aspx"),
        "The state of one recipient of one msgid",
        {"msgid": "The msgid that sendsms answered.", "dstaddr": "The recipient's number."},
        "QueryReply",
    ),
    _Operation(
        ("/sms_gw/queryBulk.asp", "/sms_gw/querybulk.aspx"),
        "The states of the recipients of up to 100 msgids",
        {
            "msgid": "msgids, comma-separated (at most 100).",
            "dstaddr": "Optional numbers, comma-separated: only these recipients are shown.",
        },
        "QueryReply",
    ),
    _Operation(
        ("/sms_gw/query_point.asp", "/sms_gw/query_point.aspx"),
        "The account's balance in points",
        {},
        "PointReply",
    ),
    _Operation(
        ("/sms_gw/sendsms_cancel.asp", "/sms_gw/sendsms_cancel.aspx"),
        "Cancel the recipients of a msgid still waiting for their dlvtime",
        {"msgid": "The msgid to cancel."},
        "SendReply",
    ),
)

_CODE: Final[Schema] = {"type": "string", "pattern": "^-?[0-9]+$"}


def _results_of(item: Schema, **array: int) -> Schema:
    """The JSON shape of the list replies: ``{"results": {"result": [item, ...]}}``."""
    result = {"type": "array", **array, "items": item}
    inner = {"type": "object", "required": ["result"], "properties": {"result": result}}
    return {"type": "object", "required": ["results"], "properties": {"results": inner}}


_COMPONENTS: Final[Schema] = {
    "schemas": {
        "SendReply": {
            "type": "object",
            "required": ["result"],
            "properties": {
                "result": {
                    "type": "object",
                    "required": ["msgid", "statuscode", "statusstr", "point"],
                    "properties": {
                        "msgid": {"type": "integer"},
                        "statuscode": _CODE,
                        "statusstr": _STRING,
                        "point": {"type": "integer", "minimum": 0},
                    },
                }
            },
        },
        "QueryReply": _results_of(
            {
                "type": "object",
                "required": ["statusCode", "statusStr", "cellphone"],
                "properties": {
                    "statusCode": _CODE,
                    "statusStr": _STRING,
                    "cellphone": _STRING,
                    "msgid": {"type": ["integer", "null"]},
                },
            }
        ),
        "PointReply": _results_of(
            {
                "type": "object",
                "required": ["statuscode", "point"],
                "properties": {"statuscode": _CODE, "point": _CODE},
            },
            minItems=1,
            maxItems=1,
        ),
    }
}


def _descriptions(operation: _Operation) -> dict[str, str]:
    return {**_COMMON, **operation.parameters}


def _query_parameter(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": name in {"username", "password"},
        "description": description,
        "schema": _STRING,
    }


def _responses(json_reply: str) -> Schema:
    return {
        "200": {
            "description": "The answer in the protocol's format; statuscode tells the outcome.",
            "content": {
                "text/plain": {"schema": _STRING},
                "application/json": {"schema": {"$ref": f"#/components/schemas/{json_reply}"}},
                "application/xml": {"schema": _STRING},
            },
        }
    }


def _get(operation: _Operation) -> Schema:
    parameters = [_query_parameter(n, d) for n, d in _descriptions(operation).items()]
    return {
        "summary": operation.summary,
        "parameters": parameters,
        "responses": _responses(operation.json_reply),
    }


def _post(operation: _Operation) -> Schema:
    descriptions = _descriptions(operation)
    form = {
        "type": "object",
        "required": ["username", "password"],
        "properties": {n: {**_STRING, "description": d} for n, d in descriptions.items()},
    }
    rtype = {**_query_parameter("rtype", _COMMON["rtype"]), "required": False}
    return {
        "summary": operation.summary,
        "parameters": [rtype],
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": form}},
        },
        "responses": _responses(operation.json_reply),
    }


def _operation_id(path: str, method: str) -> str:
    name = path.rsplit("/", 1)[1].replace(".", "_")
    return f"{method}_{name}"


def openapi_document() -> Schema:
    """The OpenAPI 3.1 description of every smsgo endpoint and alias, GET and POST."""
    paths: Schema = {}
    for operation in _OPERATIONS:
        for path in operation.paths:
            paths[path] = {
                "get": {**_get(operation), "operationId": _operation_id(path, "get")},
                "post": {**_post(operation), "operationId": _operation_id(path, "post")},
            }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smsgw: the smsgo HTTP API v6.2",
            "version": "6.2",
            "description": "Answers in the protocol's own format, always HTTP 200.",
        },
        "paths": paths,
        "components": _COMPONENTS,
    }


OPENAPI_JSON: Final = orjson.dumps(openapi_document())
