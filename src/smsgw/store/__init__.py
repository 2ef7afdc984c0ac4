"""The durable store: ``open_store(url)`` picks the backend by the URL's scheme.

- ``memory://``: the in-memory reference (tests, demos); nothing survives the process
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (``?synchronous=NORMAL``
  trades the last commits on power loss for speed; default FULL)
- ``postgresql://user:password@host:port/database`` (also ``postgres://``)

The returned store is not connected yet: call ``upgrade()`` and/or ``open()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from smsgw.errors import ConfigError
from smsgw.store.memory import MemoryStore
from smsgw.store.postgres import PostgresStore
from smsgw.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from smsgw.store.port import Store

__all__ = ["MemoryStore", "PostgresStore", "SqliteStore", "open_store"]

_SETTING = "database.url"


def open_store(url: str, *, inline_writes: bool = False) -> Store:
    """The store a database URL names (not yet opened); ConfigError for a bad URL.

    ``inline_writes``: SQLite writes on the event loop's thread, for processes that run
    only the API or only the engine (see `SqliteStore`); the other backends have no writer
    thread and ignore it.
    """
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise ConfigError(_SETTING, "expected <scheme>://..., e.g. sqlite:///smsgw.db")
    scheme = scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        return _sqlite(url, inline_writes=inline_writes)
    if scheme in {"postgresql", "postgres"}:
        return PostgresStore(url)
    raise ConfigError(_SETTING, f"unsupported scheme {scheme!r}; use sqlite, postgresql or memory")


def _sqlite(url: str, *, inline_writes: bool) -> SqliteStore:
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigError(_SETTING, "a sqlite URL has no host: sqlite:///relative or ////absolute")
    path = parts.path.removeprefix("/")
    if not path:
        raise ConfigError(_SETTING, "a sqlite URL needs a file path")
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ConfigError(_SETTING, f"unknown sqlite option(s): {', '.join(sorted(unknown))}")
    return SqliteStore(
        path, synchronous=options.get("synchronous", "FULL"), inline_writes=inline_writes
    )
