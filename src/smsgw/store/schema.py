"""Versioned schema migrations shipped as SQL files, one folder per dialect.

``migrations/<dialect>/NNNN_name.sql``: NNNN is the version, applied in increasing order, each
in its own transaction, and recorded in ``schema_migrations``. A version is never edited once
released; a change is a new file.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from smsgw.errors import StoreError

Dialect = Literal["sqlite", "postgres"]

_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: Dialect, to: int | None = None) -> tuple[Migration, ...]:
    """The dialect's migrations in version order (those up to version ``to`` if given)."""
    every = _load(dialect)
    return every if to is None else tuple(m for m in every if m.version <= to)


@cache
def _load(dialect: Dialect) -> tuple[Migration, ...]:
    folder = resources.files("smsgw.store").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    return tuple(found)


def latest_version(dialect: Dialect) -> int:
    every = migrations(dialect)
    return every[-1].version if every else 0


def check_current(version: int, dialect: Dialect) -> None:
    """Raise StoreError unless the database schema is exactly the one this code expects."""
    expected = latest_version(dialect)
    if version != expected:
        raise StoreError(
            f"schema is at version {version}, expected {expected}; run `smsgw db upgrade`"
        )


def sqlite_statements(sql: str) -> list[str]:
    """Split a script into statements (sqlite3 executes one statement per call)."""
    statements: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip() and not _only_comments(current):
        raise StoreError("migration ends with an incomplete SQL statement")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())
