from __future__ import annotations

from pathlib import Path

import pytest

from smsgw.errors import ConfigError
from smsgw.store import MemoryStore, PostgresStore, SqliteStore, open_store


def test_memory_url() -> None:
    """memory:// gives the in-memory store."""
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_relative_and_absolute_paths() -> None:
    """Three slashes mean a relative path, four an absolute one."""
    relative = open_store("sqlite:///data/smsgw.db")
    absolute = open_store("sqlite:////var/lib/smsgw/smsgw.db")
    assert isinstance(relative, SqliteStore)
    assert isinstance(absolute, SqliteStore)
    assert relative.path == Path("data/smsgw.db")
    assert absolute.path == Path("/var/lib/smsgw/smsgw.db")


def test_sqlite_synchronous_option() -> None:
    """?synchronous= is accepted for the known levels and refused otherwise."""
    assert isinstance(open_store("sqlite:///a.db?synchronous=normal"), SqliteStore)
    with pytest.raises(ConfigError, match=r"database\.url"):
        open_store("sqlite:///a.db?synchronous=sometimes")
    with pytest.raises(ConfigError, match="unknown sqlite option"):
        open_store("sqlite:///a.db?cache=shared")


def test_sqlite_url_needs_a_path() -> None:
    """sqlite:// without a file path or with a host is a ConfigError."""
    with pytest.raises(ConfigError):
        open_store("sqlite:///")
    with pytest.raises(ConfigError):
        open_store("sqlite://host/a.db")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "POSTGRESQL"])
def test_postgres_schemes(scheme: str) -> None:
    """postgresql:// and postgres:// give the PostgreSQL store, whose repr hides the password."""
    store = open_store(f"{scheme}://smsgw:s3cret@db.example:5433/smsgw")
    assert isinstance(store, PostgresStore)
    assert "s3cret" not in repr(store)
    assert "db.example:5433/smsgw" in repr(store)


@pytest.mark.parametrize("url", ["mysql://root:s3cret@db/smsgw", "s3cret", "redis://:s3cret@x"])
def test_unknown_scheme_is_a_config_error_without_secrets(url: str) -> None:
    """An unsupported URL names the setting and never repeats the password."""
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert caught.value.name == "database.url"
    assert "s3cret" not in str(caught.value)
