"""A customer endpoint built into the demo, so a newcomer sees callbacks without writing one.

Mounted at ``/demo`` by ``smsgw demo`` only (loopback clients only): ``/demo/dlr`` answers a
delivery report with the magic acknowledgement, ``/demo/reply`` takes a forwarded reply, and
``/demo/log`` lists what arrived (newest last).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from smsgw.domain.delivery import acknowledgement

log = logging.getLogger("smsgw.demo")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class DemoReceiver:
    def __init__(self, keep: int = 100) -> None:
        self.hits: deque[str] = deque(maxlen=keep)

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],  # noqa: ARG002 - ASGI signature
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        if path == "/log":
            body = "\n".join(self.hits) + "\n" if self.hits else "nothing yet\n"
        elif path in ("/dlr", "/reply"):
            self.hits.append(f"{path[1:]} {query}")
            log.info("demo endpoint got a %s callback: %s", path[1:], query)
            msgid = dict(parse_qsl(query)).get("msgid", "")
            body = acknowledgement(msgid)
        else:
            body = "try /demo/dlr, /demo/reply or /demo/log\n"
        data = body.encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(data)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})
