from __future__ import annotations

from importlib import resources

import pytest

from smsgw.errors import StoreError
from smsgw.store.schema import check_current, latest_version, migrations, sqlite_statements


def test_migration_files_ship_with_the_package() -> None:
    """The .sql files are package data, found through importlib.resources."""
    folder = resources.files("smsgw.store").joinpath("migrations")
    for dialect in ("sqlite", "postgres"):
        names = sorted(entry.name for entry in folder.joinpath(dialect).iterdir())
        assert "0001_core_tables.sql" in names


def test_both_dialects_have_the_same_versions() -> None:
    """Every version exists for SQLite and PostgreSQL, numbered 1, 2, ... without gaps."""
    sqlite = [(m.version, m.name) for m in migrations("sqlite")]
    postgres = [(m.version, m.name) for m in migrations("postgres")]
    assert sqlite == postgres
    assert [version for version, _ in sqlite] == list(range(1, len(sqlite) + 1))
    assert latest_version("sqlite") >= 2


def test_migrations_up_to_a_version() -> None:
    """migrations(dialect, to) stops at that version."""
    assert [m.version for m in migrations("sqlite", 1)] == [1]


def test_check_current_refuses_other_versions() -> None:
    """check_current accepts only the latest version and says how to fix the rest."""
    check_current(latest_version("sqlite"), "sqlite")
    with pytest.raises(StoreError, match="run `smsgw db upgrade`"):
        check_current(0, "sqlite")
    with pytest.raises(StoreError, match="expected"):
        check_current(latest_version("sqlite") + 1, "sqlite")


def test_sqlite_statements_split_a_script() -> None:
    """A script splits into its statements; comments alone are no statement."""
    script = "-- intro\nCREATE TABLE a (x TEXT DEFAULT ';');\nINSERT INTO a VALUES ('b');\n-- end\n"
    assert sqlite_statements(script) == [
        "-- intro\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "INSERT INTO a VALUES ('b');",
    ]


def test_sqlite_statements_refuse_a_truncated_script() -> None:
    """A script ending inside a statement raises StoreError."""
    with pytest.raises(StoreError):
        sqlite_statements("CREATE TABLE a (x TEXT")
