"""The smsgo HTTP API as a raw ASGI application: a thin, fast path.

It reads parameters, asks the engine's Gateway, and renders the reply in the caller's format.
Every answer in the protocol's format is HTTP 200 with a Content-Length; nothing that goes
wrong inside reaches the client as a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from smsgw.api import render
from smsgw.api.openapi import OPENAPI_JSON
from smsgw.api.params import parse_params
from smsgw.api.render import Format, QueryRow, Rendered, SendReply
from smsgw.domain.netaddr import client_address
from smsgw.domain.query import parse_number_filter
from smsgw.engine.gateway import Caller, Gateway, Lookup
from smsgw.engine.metrics import CONTENT_TYPE, Metrics
from smsgw.errors import CgiError, SendFailError, SmsgoError

if TYPE_CHECKING:
    from ipaddress import IPv4Network, IPv6Network

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Params = Mapping[str, str]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("smsgw.api")


class ClientGone(Exception):  # noqa: N818 - an event, not an error of the gateway
    """The client disconnected while its request was still arriving."""


access_log = logging.getLogger("smsgw.access")


async def _send(gateway: Gateway, caller: Caller, params: Params, fmt: Format) -> Rendered:
    accepted = await gateway.send(caller, params)
    return render.send_reply(SendReply(accepted.msgid, 0, "OK", accepted.points), fmt)


async def _cancel(gateway: Gateway, caller: Caller, params: Params, fmt: Format) -> Rendered:
    cancelled = await gateway.cancel(caller, params)
    return render.send_reply(SendReply(cancelled.msgid, 0, "OK", cancelled.points), fmt)


def _send_failed(error: SmsgoError, _: Params, fmt: Format) -> Rendered:
    return render.send_reply(SendReply(error.code, error.code, error.statusstr, 0), fmt)


async def _query(gateway: Gateway, caller: Caller, params: Params, fmt: Format) -> Rendered:
    lookup = await gateway.query(caller, params)
    return render.query_rows([_lookup_row(lookup)], fmt, bulk=False)


def _query_failed(error: SmsgoError, params: Params, fmt: Format) -> Rendered:
    row = QueryRow(error.code, error.statusstr, _shown_number(params.get("dstaddr")))
    return render.query_rows([row], fmt, bulk=False)


async def _query_bulk(gateway: Gateway, caller: Caller, params: Params, fmt: Format) -> Rendered:
    lookups = await gateway.query_bulk(caller, params)
    return render.query_rows([_lookup_row(lookup) for lookup in lookups], fmt, bulk=True)


def _query_bulk_failed(error: SmsgoError, _: Params, fmt: Format) -> Rendered:
    return render.query_rows([QueryRow(error.code, error.statusstr, "")], fmt, bulk=True)


async def _point(gateway: Gateway, caller: Caller, _: Params, fmt: Format) -> Rendered:
    return render.point_reply(0, await gateway.balance(caller), fmt)


def _point_failed(error: SmsgoError, _: Params, fmt: Format) -> Rendered:
    return render.point_reply(error.code, 0, fmt)


def _lookup_row(lookup: Lookup) -> QueryRow:
    if lookup.status is None:
        return QueryRow(-1, "NOTFOUND", lookup.number, lookup.msgid)
    state = lookup.status.state
    return QueryRow(state.statuscode, state.value, lookup.number, lookup.msgid)


def _shown_number(raw: str | None) -> str:
    numbers = parse_number_filter(raw)
    return ",".join(numbers) if numbers else ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint's use case and how it renders a failure in its own reply shape."""

    run: Callable[[Gateway, Caller, Params, Format], Awaitable[Rendered]]
    failed: Callable[[SmsgoError, Params, Format], Rendered]


_SEND = Endpoint(_send, _send_failed)
_QUERY = Endpoint(_query, _query_failed)
_QUERY_BULK = Endpoint(_query_bulk, _query_bulk_failed)
_POINT = Endpoint(_point, _point_failed)
_CANCEL = Endpoint(_cancel, _send_failed)

ROUTES: dict[str, Endpoint] = {
    "/sms_gw/sendsms.aspx": _SEND,
    "/sms_gw/sendsms.asp": _SEND,
    "/sms_gw/query.asp": _QUERY,
    "/sms_gw/query.aspx": _QUERY,
    "/sms_gw/querybulk.asp": _QUERY_BULK,
    "/sms_gw/querybulk.aspx": _QUERY_BULK,
    "/sms_gw/query_point.asp": _POINT,
    "/sms_gw/query_point.aspx": _POINT,
    "/sms_gw/sendsms_cancel.asp": _CANCEL,
    "/sms_gw/sendsms_cancel.aspx": _CANCEL,
}

_OPERATIONS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
_LOOPBACK = frozenset({"127.0.0.1", "::1"})

# What an unexpected failure looks like to the client, per endpoint: never a stack trace.
_INTERNAL = SendFailError("internal error")


class SmsgoApp:
    """ASGI entry point. ``lifespan`` hooks open and close what the gateway needs."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        trusted_proxies: Sequence[IPv4Network | IPv6Network] = (),
        max_body_bytes: int = 65536,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
        ready: Callable[[], Awaitable[bool]] | None = None,
        mounts: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.gateway = gateway
        self._mounts = dict(mounts or {})
        self._metrics = metrics
        self._ready = ready
        self._trusted = tuple(trusted_proxies)
        self._max_body = max_body_bytes
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].lower()
        if path in _OPERATIONS:
            await self._operation(path, send)
            return
        endpoint = ROUTES.get(path)
        if endpoint is None and await self._mounted(path, scope, receive, send):
            return
        if endpoint is None:
            await _respond(send, 404, b"not found", render.TEXT)
            return
        if scope["method"] not in ("GET", "POST"):
            await _respond(send, 405, b"method not allowed", render.TEXT, allow=b"GET, POST")
            return
        try:
            body, status = await self._answer(endpoint, scope, receive)
        except ClientGone:
            return  # nothing was done, and there is nobody to answer
        await _respond(send, 200, body[0], body[1])
        if access_log.isEnabledFor(logging.INFO):
            _log_access(scope, status)

    async def _answer(
        self, endpoint: Endpoint, scope: Scope, receive: Receive
    ) -> tuple[Rendered, int]:
        query: bytes = scope.get("query_string", b"")
        fmt: Format | None = None  # until the parameters parse: then _format_of(query)
        params: Params = {}
        try:
            params = parse_params(query, await self._read_form(scope, receive))
            fmt = Format.from_rtype(params.get("rtype"))
            caller = Caller.from_params(params, self._client(scope))
            return await endpoint.run(self.gateway, caller, params, fmt), 200
        except SmsgoError as error:
            return endpoint.failed(error, params, _known(fmt, query)), 200
        except ClientGone:
            raise
        except Exception:
            log.exception("unexpected error answering %s", scope["path"])
            return endpoint.failed(_INTERNAL, params, _known(fmt, query)), 500

    async def _read_form(self, scope: Scope, receive: Receive) -> bytes | None:
        if scope["method"] != "POST":
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # The client left before its body was complete (or timed out, see
                # smsgw.server): what arrived is not a request, however it parses.
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise CgiError("request body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if not _is_form(scope):
            return None
        return b"".join(chunks)

    async def _mounted(self, path: str, scope: Scope, receive: Receive, send: Send) -> bool:
        """Hand ``/<prefix>/...`` to a mounted app (loopback clients only); False if none."""
        prefix = "/" + path.split("/", 2)[1]
        app = self._mounts.get(prefix)
        peer = scope.get("client")
        if app is None or not peer or peer[0] not in _LOOPBACK:
            return False
        inner = dict(scope, path=scope["path"][len(prefix) :] or "/")
        await app(inner, receive, send)
        return True

    async def _operation(self, path: str, send: Send) -> None:
        """/healthz (process up), /readyz (store reachable, a connector bound), /metrics,
        /openapi.json (the API's description)."""
        if path == "/healthz":
            await _respond(send, 200, b"ok", render.TEXT)
        elif path == "/openapi.json":
            await _respond(send, 200, OPENAPI_JSON, render.JSON)
        elif path == "/readyz":
            ready = await self._is_ready()
            await _respond(
                send, 200 if ready else 503, b"ready" if ready else b"not ready", render.TEXT
            )
        elif self._metrics is not None:
            await _respond(send, 200, self._metrics.render(), CONTENT_TYPE)
        else:
            await _respond(send, 404, b"not found", render.TEXT)

    async def _is_ready(self) -> bool:
        if self._ready is None:
            return True
        try:
            return await self._ready()
        except Exception:  # noqa: BLE001 - any failure of the check means not ready
            return False

    def _client(self, scope: Scope) -> str | None:
        peer = scope.get("client")
        peer_host = peer[0] if peer else None
        if not self._trusted:
            return peer_host
        forwarded = _header(scope, b"x-forwarded-for")
        return client_address(peer_host, forwarded, self._trusted)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._run_hook(self._on_startup, "startup", send)
            elif message["type"] == "lifespan.shutdown":
                await self._run_hook(self._on_shutdown, "shutdown", send)
                return

    @staticmethod
    async def _run_hook(hook: Callable[[], Awaitable[None]] | None, phase: str, send: Send) -> None:
        try:
            if hook is not None:
                await hook()
        except Exception as error:
            log.exception("%s failed", phase)
            await send({"type": f"lifespan.{phase}.failed", "message": str(error)})
            return
        await send({"type": f"lifespan.{phase}.complete"})


def _known(fmt: Format | None, query: bytes) -> Format:
    """``fmt``, or for a request whose parameters did not parse, the query's rtype."""
    return fmt if fmt is not None else _format_of(query)


def _format_of(query: bytes) -> Format:
    """Best-effort rtype for replies to requests whose parameters could not be parsed."""
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name.lower() == b"rtype":
            return Format.from_rtype(value.decode("latin-1"))
    return Format.TEXT


def _is_form(scope: Scope) -> bool:
    content_type = _header(scope, b"content-type")
    if content_type is None:
        return True
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, allow: bytes | None = None
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if allow is not None:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def redact_query(query: str) -> str:
    """The query string with every ``password`` value replaced, for logs."""
    pairs = query.split("&")
    for index, pair in enumerate(pairs):
        name, sep, _ = pair.partition("=")
        if sep and unquote_plus(name).strip().lower() == "password":
            pairs[index] = f"{name}=***"
    return "&".join(pairs)


def _log_access(scope: Scope, status: int) -> None:
    peer = scope.get("client")
    query = redact_query(scope.get("query_string", b"").decode("latin-1"))
    target = f"{scope['path']}?{query}" if query else scope["path"]
    access_log.info('%s "%s %s" %d', peer[0] if peer else "-", scope["method"], target, status)
