"""The engine's CLI commands on a SQLite file: callbacks retry/list, replies, webhook secret."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsgw import cli
from smsgw.domain.lockout import LockPolicy
from smsgw.domain.model import State
from smsgw.domain.pricing import Rates
from smsgw.domain.send import plan_send
from smsgw.server import utc_now
from smsgw.store import open_store
from smsgw.store.port import Store
from smsgw.store.records import CallbackOutcome, IncomingReply, SubmitResult

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
SECRET = "whsec-cli-0123"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "smsgw.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n')
    return path


def with_store(config: Path, work: object) -> object:
    url = config.read_text().split('"')[1]

    async def run() -> object:
        store = open_store(url)
        await store.upgrade()
        await store.open()
        try:
            return await work(store)  # type: ignore[operator]
        finally:
            await store.close()

    return asyncio.run(run())


async def failed_callback(store: Store, username: str) -> None:
    """An account with one failed callback."""
    account = await store.create_account(username, "hash", 10, NOW)
    params = {"dstaddr": "0912345678", "smbody": "hi", "response": "http://example.com/d"}
    plan = plan_send(params, Rates(()), NOW, allow_private=False)
    assert await store.accept(account.id, plan, NOW) is not None
    (due,) = await store.claim_due(NOW, 10, 60)
    await store.record_submits(
        [SubmitResult(due.recipient_id, "sim", final_state=State.REJECTD)], NOW
    )
    (job,) = await store.claim_callbacks(NOW, 10, 60)
    await store.finish_callbacks([CallbackOutcome(job.id, delivered=False, error="HTTP 500")], NOW)


def smsgw(config: Path, *argv: str) -> int:
    return cli.main(["--config", str(config), *argv])


def test_callbacks_retry_failed_of_one_account(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`callbacks retry --failed --account` makes only that account's failed callbacks pending."""

    async def setup(store: Store) -> None:
        await failed_callback(store, "alice")
        await failed_callback(store, "bob")

    with_store(config, setup)
    assert smsgw(config, "callbacks", "retry", "--failed", "--account", "bob") == 0
    assert "1 failed callback(s) queued again" in capsys.readouterr().out
    assert smsgw(config, "callbacks", "list", "--state", "failed") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "\talice\tdlr\tfailed\t1\t" in line
    assert "HTTP 500" in line


def test_callbacks_retry_failed_of_all(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`callbacks retry --failed` re-queues every failed callback."""

    async def setup(store: Store) -> None:
        await failed_callback(store, "alice")
        await failed_callback(store, "bob")

    with_store(config, setup)
    assert smsgw(config, "callbacks", "retry", "--failed") == 0
    assert "2 failed callback(s) queued again" in capsys.readouterr().out
    assert smsgw(config, "callbacks", "list", "--state", "pending") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_replies_list_unmatched(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`replies list --unmatched` shows a reply that matched no message."""

    async def setup(store: Store) -> None:
        reply = IncomingReply("sim", "0912345678", "55123", "hello?", "ASCII", NOW)
        await store.store_reply(reply, NOW)

    with_store(config, setup)
    assert smsgw(config, "replies", "list", "--unmatched") == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("\t0912345678\t55123\tunmatched\thello?")


def test_webhook_secret_set_and_cleared(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`account set-webhook-secret` sets the signing key without printing it; --clear removes it."""

    async def setup(store: Store) -> None:
        await failed_callback(store, "alice")

    async def secret_of_job(store: Store) -> str | None:
        await store.retry_failed_callbacks(None, NOW)
        (job,) = await store.claim_callbacks(NOW, 10, 60)
        await store.finish_callbacks([CallbackOutcome(job.id, delivered=False)], NOW)
        return job.webhook_secret

    with_store(config, setup)
    assert smsgw(config, "account", "set-webhook-secret", "alice", SECRET) == 0
    assert SECRET not in capsys.readouterr().out
    assert with_store(config, secret_of_job) == SECRET
    assert smsgw(config, "account", "set-webhook-secret", "alice", "--clear") == 0
    assert with_store(config, secret_of_job) is None


def test_account_unlock_lifts_a_lock_set_by_failures(
    config: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`account show` tells a locked account and until when; `account unlock` lifts it."""

    async def lock(store: Store) -> None:
        account = await store.create_account("alice", "hash", 10, NOW)
        for _ in range(3):
            await store.record_auth_failure(account.id, utc_now(), LockPolicy(3, 300.0, 900.0))

    with_store(config, lock)
    assert smsgw(config, "account", "show", "alice") == 0
    assert "locked:      until " in capfd.readouterr().out
    assert smsgw(config, "account", "unlock", "alice") == 0
    assert "locked" not in capfd.readouterr().out

    async def state(store: Store) -> tuple[object, int]:
        account = await store.get_account("alice")
        assert account is not None
        return account.locked_until, account.recent_failures

    assert with_store(config, state) == (None, 0)
    assert smsgw(config, "account", "unlock", "nobody") != 0
