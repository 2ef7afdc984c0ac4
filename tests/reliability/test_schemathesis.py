"""Schemathesis against the live server: every endpoint and alias, GET and POST, from /openapi.json.

The server is uvicorn on a loopback port in a thread of its own (schemathesis calls it with
blocking ``requests``), over a real SQLite store with one funded account. Every reply must be
a protocol answer: no 5xx, no stack trace, a body that parses as the protocol's lines, rows,
JSON or XML, and a JSON body that matches the document's schema.
"""

from __future__ import annotations

import re
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import orjson
import pytest
import schemathesis
import uvicorn
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from smsgw.api.openapi import openapi_document
from smsgw.config import load_settings
from smsgw.engine import accounts, auth
from smsgw.server import build, utc_now, uvicorn_config

USERNAME = "fuzz-account"
PASSWORD = "schemathesis-pass-7"
POINTS = 1_000_000

SEND_LINES = re.compile(r"msgid=-?\d+\nstatuscode=-?\d+\nstatusstr=[^\n]*\npoint=\d+\n")
QUERY_ROW = re.compile(r"-?\d+\|[^|\r\n]*\|[^|\r\n]*")
BULK_ROW = re.compile(r"-?\d+\|[^|\r\n]*\|[^|\r\n]*\|\d*")
POINT_TEXT = re.compile(r"-?\d+")
KINDS = {
    "sendsms": "send",
    "sendsms_cancel": "send",
    "query": "query",
    "querybulk": "bulk",
    "query_point": "point",
}

schema = schemathesis.openapi.from_dict(openapi_document())


@dataclass(frozen=True, slots=True)
class LiveServer:
    base_url: str


def _serve_in_thread(server: uvicorn.Server, sock: socket.socket) -> threading.Thread:
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """uvicorn + SQLite on disk with one account; the socket listens before the server starts,
    so early requests wait in the backlog instead of failing."""
    database = Path(tmp_path_factory.mktemp("schemathesis")) / "gw.db"
    settings_ = load_settings(None, {"SMSGW_DATABASE_URL": f"sqlite:///{database}"})
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_HASHER", cheap)
        runtime = build(settings_)
        _create_account(runtime.store)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        server = uvicorn.Server(uvicorn_config(runtime, settings_, log_level="warning"))
        thread = _serve_in_thread(server, sock)
        try:
            yield LiveServer(f"http://127.0.0.1:{sock.getsockname()[1]}")
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()
    assert not thread.is_alive()


def _create_account(store: Any) -> None:
    import asyncio  # noqa: PLC0415 - only the setup runs a loop of its own here

    async def create() -> None:
        await store.upgrade()
        await store.open()
        await accounts.create_account(store, USERNAME, PASSWORD, POINTS, utc_now())
        await store.close()

    asyncio.run(create())


def _kind(path: str) -> str:
    name = path.rsplit("/", 1)[1].split(".", 1)[0].lower()
    return KINDS[name]


def _with_credentials(case: schemathesis.Case[Any]) -> None:
    """Half the cases (chosen by a hash of the case, so reruns agree) log in for real."""
    if zlib.crc32(repr((case.query, case.body)).encode()) % 2:
        return
    real = {"username": USERNAME, "password": PASSWORD}
    if case.method.upper() == "POST" and isinstance(case.body, dict):
        case.body = {**case.body, **real}
    elif case.method.upper() == "GET":
        case.query = {**(case.query or {}), **real}


def assert_protocol_text(kind: str, text: str) -> None:
    if kind == "send":
        assert SEND_LINES.fullmatch(text), text
    elif kind == "point":
        assert POINT_TEXT.fullmatch(text), text
    elif kind == "query":
        assert QUERY_ROW.fullmatch(text), text
    else:
        assert all(BULK_ROW.fullmatch(row) for row in text.split("\r\n")), text


def assert_protocol_reply(kind: str, content_type: str, body: bytes) -> None:
    """The body parses in the format its content type names, as the protocol shapes it."""
    assert b"Traceback" not in body
    if content_type.startswith("application/json"):
        orjson.loads(body)
    elif content_type.startswith("application/xml"):
        root = ET.fromstring(body)  # noqa: S314 - our own server's reply under test
        assert root.tag == ("result" if kind == "send" else "results")
    else:
        assert content_type == "text/plain; charset=utf-8"
        assert_protocol_text(kind, body.decode("utf-8"))


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_in_the_protocols_format(
    case: schemathesis.Case[Any], live_server: LiveServer
) -> None:
    """Generated GET and POST requests get a 200 protocol reply that parses, never a 5xx."""
    _with_credentials(case)
    response = case.call(base_url=live_server.base_url, timeout=30)
    case.validate_response(
        response,
        checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
    )
    if case.method.upper() not in {"GET", "POST"}:
        assert response.status_code == 405  # schemathesis also tries undocumented methods
        return
    assert response.status_code == 200
    content_type = response.headers["content-type"][0]
    assert_protocol_reply(_kind(case.path), content_type, response.content)


def test_openapi_document_is_served(live_server: LiveServer) -> None:
    """GET /openapi.json serves the OpenAPI 3.1 document: five endpoints, aliases, GET and POST."""
    response = httpx.get(f"{live_server.base_url}/openapi.json", timeout=10)
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert len(document["paths"]) == 10
    for path, item in document["paths"].items():
        assert set(item) == {"get", "post"}, path
        form = item["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        assert {"username", "password", "rtype"} <= set(form["schema"]["properties"])
        assert set(item["get"]["responses"]["200"]["content"]) == {
            "text/plain",
            "application/json",
            "application/xml",
        }
