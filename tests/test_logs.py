"""Structured logs never carry a secret, whichever way it reaches a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from smsgw import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logs.configure("info")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], root.level = saved


def test_password_in_a_url_is_masked(captured: io.StringIO) -> None:
    """A request URL logged with its query keeps everything but the password."""
    logging.getLogger("smsgw.test").info(
        "GET /sms_gw/sendsms.aspx?username=alice&password=hunter22&dstaddr=0912345678"
    )
    line = captured.getvalue()
    assert "hunter22" not in line
    assert "password=***" in line
    assert "dstaddr=0912345678" in line


def test_secret_arguments_and_exceptions_are_masked(captured: io.StringIO) -> None:
    """Formatted arguments and exception text are masked too."""
    logger = logging.getLogger("smsgw.test")
    logger.warning("bind refused for %s", "system_id=smsgw password=s3cr3t")
    try:
        raise ValueError("connect failed: api_key=abcdef123")  # noqa: TRY301
    except ValueError:
        logger.exception("oops")
    text = captured.getvalue()
    assert "s3cr3t" not in text
    assert "abcdef123" not in text


def test_secret_named_keys_are_masked() -> None:
    """The processor empties keys that name a secret, whatever their value."""
    event = logs.redact(None, "info", {"event": "x", "password": "p", "webhook_secret": "w"})
    assert event == {"event": "x", "password": "***", "webhook_secret": "***"}


def test_redact_text_keeps_ordinary_text() -> None:
    """Text without secret pairs is unchanged."""
    text = "sent 3 messages to 0912345678; passwords rotate monthly"
    assert logs.redact_text(text) == text
