"""The simulator's control endpoint: a raw ASGI app served by uvicorn on 127.0.0.1.

``POST /mo`` (form fields ``from``, ``to``, ``text``) sends an MO: 200 ``sent to N``, 409
``no receiver bound``, 400 when a field is missing or ``from`` is no mobile number.
``GET /stats`` answers the counters as JSON. ``GET /submitted`` answers every submit_sm the
simulator accepted, in order, as JSON: ``destination``, ``esm_class``, ``data_coding`` and
``short_message`` (hex), so tools can count duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

import orjson
import uvicorn

from smsgw.errors import SmsgoError

if TYPE_CHECKING:
    from smsgw.smpp.simulator.server import Simulator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]

CONTROL_HOST: Final = "127.0.0.1"
MAX_BODY_BYTES: Final = 65536
_TEXT: Final = "text/plain; charset=utf-8"
_JSON: Final = "application/json"

log = logging.getLogger("smsgw.simulator")


class ControlApp:
    """Tells a running simulator to send MOs, and reports its counters.

    ``on_startup`` / ``on_shutdown`` run at the ASGI lifespan events, so a CLI can let uvicorn
    own the process (signals, shutdown order) and start and stop the simulator with it.
    """

    def __init__(
        self,
        simulator: Simulator,
        *,
        on_startup: Hook | None = None,
        on_shutdown: Hook | None = None,
    ) -> None:
        self.simulator = simulator
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (scope["method"], scope["path"])
        if route == ("GET", "/stats"):
            await _respond(send, 200, orjson.dumps(self.simulator.counters.as_dict()), _JSON)
        elif route == ("GET", "/submitted"):
            await _respond(send, 200, orjson.dumps(self._submitted()), _JSON)
        elif route == ("POST", "/mo"):
            status, text = await self._mo(await _read_body(receive))
            await _respond(send, status, text.encode(), _TEXT)
        elif scope["path"] in ("/stats", "/submitted", "/mo"):
            await _respond(send, 405, b"method not allowed", _TEXT)
        else:
            await _respond(send, 404, b"not found", _TEXT)

    def _submitted(self) -> list[dict[str, str | int]]:
        return [
            {
                "destination": submit.destination_addr,
                "esm_class": submit.esm_class,
                "data_coding": submit.data_coding,
                "short_message": submit.short_message.hex(),
            }
            for submit in self.simulator.submitted
        ]

    async def _mo(self, body: bytes | None) -> tuple[int, str]:
        if body is None:
            return 413, "body too large"
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        missing = [name for name in ("from", "to", "text") if not form.get(name)]
        if missing:
            return 400, f"missing {', '.join(missing)}"
        try:
            receivers = await self.simulator.inject_mo(
                form["from"][0], form["to"][0], form["text"][0]
            )
        except SmsgoError:
            return 400, "from is not a mobile number"
        if receivers == 0:
            return 409, "no receiver bound"
        return 200, f"sent to {receivers}"

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _run_hook(self._on_startup, "startup", send)
            elif message["type"] == "lifespan.shutdown":
                await _run_hook(self._on_shutdown, "shutdown", send)
                return


def control_config(app: ControlApp, port: int, *, log_level: str = "warning") -> uvicorn.Config:
    """uvicorn's settings for the control endpoint: loopback only, no access log."""
    return uvicorn.Config(
        app,
        host=CONTROL_HOST,
        port=port,
        lifespan="on",
        access_log=False,
        log_level=log_level,
        server_header=False,
    )


async def _run_hook(hook: Hook | None, phase: str, send: Send) -> None:
    try:
        if hook is not None:
            await hook()
    except Exception as error:
        log.exception("simulator %s failed", phase)
        await send({"type": f"lifespan.{phase}.failed", "message": str(error)})
        return
    await send({"type": f"lifespan.{phase}.complete"})


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
