"""The crash test (issue 5, item 1): SIGKILL the gateway under load, on SQLite and PostgreSQL.

``make test`` runs the quick plan (2 kills per backend, a small load); ``make
test-reliability`` sets SMSGW_CRASH_FULL=1 for the full plan (10 kills per backend). Each
backend also runs once without kills, where no duplicate of any kind is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.crash import CrashPlan, CrashReport, run_crash, table

FULL = os.environ.get("SMSGW_CRASH_FULL", "") not in ("", "0")
KILLS = 10 if FULL else 2
REQUESTS_PER_RUN = 30 if FULL else 12
SEED = 20240605


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crash.db'}"


def _assert_sound(report: CrashReport) -> None:
    print("\n" + table([report]))  # noqa: T201 - the table is the suite's report
    assert report.settled, (
        f"not settled: lost {report.lost[:5]}, unacked {report.unacknowledged[:5]}"
    )
    assert report.refused == []
    assert report.accepted > 0
    assert report.lost == []
    assert report.unacknowledged == []
    assert report.double_charges == 0
    assert report.charge_errors == []
    assert report.orphans <= report.failed_requests
    assert report.unexplained_submits == []
    assert report.unexplained_callbacks == []
    assert report.over_bound() == []


async def _without_kills(backend: str, url: str, tmp_path: Path) -> None:
    report = await run_crash(CrashPlan(backend, url, 0, REQUESTS_PER_RUN, SEED, tmp_path))
    _assert_sound(report)
    assert (report.duplicate_submits, report.duplicate_callbacks) == (0, 0)
    assert report.failed_requests == 0


async def _with_kills(
    backend: str, url: str, tmp_path: Path, *, separate_engine: bool = False
) -> None:
    plan = CrashPlan(
        backend, url, KILLS, REQUESTS_PER_RUN, SEED, tmp_path, separate_engine=separate_engine
    )
    report = await run_crash(plan)
    _assert_sound(report)
    assert len(report.kills) == KILLS


async def test_sqlite_without_kills_every_submit_and_callback_goes_once(tmp_path: Path) -> None:
    """On SQLite without kills nothing is lost or charged twice and nothing is repeated."""
    await _without_kills("sqlite", _sqlite_url(tmp_path), tmp_path)


async def test_sqlite_sigkill_under_load_loses_nothing_and_charges_once(tmp_path: Path) -> None:
    """On SQLite, SIGKILLs under load lose nothing, charge once, repeat only what was in flight."""
    await _with_kills("sqlite", _sqlite_url(tmp_path), tmp_path)


async def test_sqlite_engine_apart_sigkill_loses_nothing_and_charges_once(
    tmp_path: Path,
) -> None:
    """The same with the engine in its own processes (delivery and callbacks, writing SQLite
    inline): SIGKILL to serve takes both along; nothing is lost or charged twice."""
    await _with_kills("sqlite", _sqlite_url(tmp_path), tmp_path, separate_engine=True)


@pytest.mark.postgres
async def test_postgres_without_kills_every_submit_and_callback_goes_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL without kills nothing is lost or charged twice and nothing is repeated."""
    await _without_kills("postgres", postgres_url, tmp_path)


@pytest.mark.postgres
async def test_postgres_sigkill_under_load_loses_nothing_and_charges_once(
    postgres_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL, SIGKILLs lose nothing, charge once, and repeat only what was in flight."""
    await _with_kills("postgres", postgres_url, tmp_path)
