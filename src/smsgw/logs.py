"""Structured logs (structlog) for every smsgw process, with secrets redacted.

All of smsgw logs through the standard library's ``logging`` (so uvicorn's and asyncio's
records come the same way); structlog's ProcessorFormatter renders every record as key=value
text, or JSON with ``--log-format json``. The redaction step runs last before rendering, on
every record: keys that name a secret lose their value, and ``password=...``-style pairs
inside messages (the smsgo API carries the password in the URL) are masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

SECRET_KEYS: Final = frozenset({"password", "secret", "api_key", "apikey", "webhook_secret"})
_SECRET_PAIR: Final = re.compile(
    r"(?i)((?:pass(?:word|wd)?|secret|api[_-]?key|webhook_secret)(?:%3d|=|:\s*))[^&\s,;'\"]*"
)
MASK: Final = "***"


def redact_text(text: str) -> str:
    """``text`` with the value of every password/secret/api-key pair masked."""
    return _SECRET_PAIR.sub(lambda match: match.group(1) + MASK, text)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named keys and secret pairs inside strings."""
    for key, value in list(event.items()):
        if key.lower() in SECRET_KEYS:
            event[key] = MASK
        elif isinstance(value, str):
            event[key] = redact_text(value)
    return event


def configure(level: str = "info", *, json: bool = False) -> None:
    """Route every log record of the process through structlog's formatter with redaction."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
