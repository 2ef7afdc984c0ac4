"""The behaviour every Store backend must show; each backend's test module subclasses these.

Subclasses provide the fixture ``store`` (upgraded and open). SQL backends subclass
``SqlStoreContract`` and also provide ``make_store`` (a new, unopened store on the same
database, as a second process would have) and ``row_count`` (rows in a table).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from smsgw.domain.model import Accepted, Account, RecipientPlan, RecipientStatus, SendPlan, State
from smsgw.errors import AccountExistsError, StoreError, UnknownAccountError
from smsgw.store.port import Store

NOW = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)

MakeStore = Callable[[], Awaitable[Store]]
RowCount = Callable[[str], Awaitable[int]]


def make_plan(
    *numbers: str, points_each: int = 1, surcharge: int = 0, dlvtime: datetime | None = None
) -> SendPlan:
    recipients = tuple(RecipientPlan(number, points_each) for number in numbers or ("0912345678",))
    return SendPlan(
        encoding="BIG5",
        body="hello",
        coding="ucs2",
        flash=False,
        segments=1,
        recipients=recipients,
        reply_surcharge=surcharge,
        points=points_each * len(recipients) + surcharge,
        replyurl="https://example.test/reply" if surcharge else None,
        dlvtime=dlvtime,
    )


async def new_account(store: Store, username: str = "alice", points: int = 100) -> Account:
    return await store.create_account(username, "hash-of-secret", points, NOW)


async def accepted(store: Store, account: Account, plan: SendPlan) -> Accepted:
    result = await store.accept(account.id, plan, NOW)
    assert result is not None
    return result


async def balance(store: Store, account: Account) -> int:
    current = await store.get_account(account.username)
    assert current is not None
    assert await store.ledger_sum(account.id) == current.balance
    return current.balance


class StoreContract:
    # accounts -------------------------------------------------------------------------
    async def test_created_account_is_found_by_username(self, store: Store) -> None:
        """A created account comes back from get_account with its fields and time."""
        created = await new_account(store, points=50)
        found = await store.get_account("alice")
        assert found == created
        assert found.username == "alice"
        assert found.balance == 50
        assert found.created_at == NOW
        assert found.api_key_hash is None
        assert found.allowed_ips == ()
        assert not found.disabled

    async def test_unknown_username_is_none(self, store: Store) -> None:
        """get_account answers None for a username nobody has."""
        assert await store.get_account("nobody") is None

    async def test_list_accounts_is_sorted_by_username(self, store: Store) -> None:
        """list_accounts shows every account, ordered by username."""
        await new_account(store, "zoe")
        await new_account(store, "bob")
        assert [a.username for a in await store.list_accounts()] == ["bob", "zoe"]

    async def test_duplicate_username_is_refused(self, store: Store) -> None:
        """A second account with the same username raises AccountExistsError."""
        await new_account(store)
        with pytest.raises(AccountExistsError):
            await new_account(store)
        assert len(await store.list_accounts()) == 1

    async def test_setters_change_one_field_each(self, store: Store) -> None:
        """Each setter changes its field and returns the updated account."""
        await new_account(store)
        await store.set_password_hash("alice", "new-hash")
        await store.set_api_key_hash("alice", "key-hash")
        await store.set_allowed_ips("alice", ["10.0.0.1", "192.0.2.0/24"])
        changed = await store.set_disabled("alice", disabled=True)
        assert changed == await store.get_account("alice")
        assert changed.password_hash == "new-hash"
        assert changed.api_key_hash == "key-hash"
        assert changed.allowed_ips == ("10.0.0.1", "192.0.2.0/24")
        assert changed.disabled
        cleared = await store.set_api_key_hash("alice", None)
        assert cleared.api_key_hash is None

    async def test_setters_refuse_unknown_username(self, store: Store) -> None:
        """Every setter and topup raise UnknownAccountError for a missing username."""
        with pytest.raises(UnknownAccountError):
            await store.set_password_hash("nobody", "x")
        with pytest.raises(UnknownAccountError):
            await store.set_api_key_hash("nobody", None)
        with pytest.raises(UnknownAccountError):
            await store.set_allowed_ips("nobody", [])
        with pytest.raises(UnknownAccountError):
            await store.set_disabled("nobody", disabled=True)
        with pytest.raises(UnknownAccountError):
            await store.topup("nobody", 5, NOW)

    async def test_topup_adds_points_and_a_ledger_row(self, store: Store) -> None:
        """topup changes the balance (also downwards) and the ledger follows it."""
        account = await new_account(store, points=10)
        assert (await store.topup("alice", 25, NOW)).balance == 35
        assert (await store.topup("alice", -5, NOW)).balance == 30
        assert await balance(store, account) == 30

    # accept -----------------------------------------------------------------------------
    async def test_accept_debits_and_queues_an_immediate_request(self, store: Store) -> None:
        """A request without dlvtime is debited and its recipients are QUEUED."""
        account = await new_account(store, points=10)
        result = await accepted(store, account, make_plan("0911111111", "0922222222"))
        assert result.points == 2
        assert 1_000_000_000 <= result.msgid < 10**16
        assert await balance(store, account) == 8
        states = await store.recipients(account.id, [result.msgid])
        assert [s.state for s in states] == [State.QUEUED, State.QUEUED]

    async def test_accept_with_future_dlvtime_waits(self, store: Store) -> None:
        """A request whose dlvtime is after now starts WAITING; a past one is QUEUED."""
        account = await new_account(store)
        future = await accepted(store, account, make_plan(dlvtime=LATER))
        past = await accepted(store, account, make_plan(dlvtime=NOW - timedelta(minutes=1)))
        found = await store.recipients(account.id, [future.msgid, past.msgid])
        assert [s.state for s in found] == [State.WAITING, State.QUEUED]

    async def test_accept_refuses_when_balance_is_too_low(self, store: Store) -> None:
        """An accept the balance does not cover answers None and changes nothing."""
        account = await new_account(store, points=2)
        assert await store.accept(account.id, make_plan("0911111111", points_each=3), NOW) is None
        assert await balance(store, account) == 2
        result = await accepted(store, account, make_plan(points_each=2))
        assert await balance(store, account) == 0
        assert [s.number for s in await store.recipients(account.id, [result.msgid])] == [
            "0912345678"
        ]

    async def test_accept_for_unknown_account_is_refused(self, store: Store) -> None:
        """An accept for an account id that does not exist answers None."""
        assert await store.accept(987654, make_plan(), NOW) is None

    async def test_accept_refuses_duplicate_numbers(self, store: Store) -> None:
        """A plan listing a number twice is a StoreError before anything is written."""
        account = await new_account(store)
        with pytest.raises(StoreError):
            await store.accept(account.id, make_plan("0911111111", "0911111111"), NOW)
        assert await balance(store, account) == 100

    async def test_concurrent_accepts_never_overdraw(self, store: Store) -> None:
        """Of 30 concurrent one-point accepts on a balance of 10, exactly 10 succeed."""
        account = await new_account(store, points=10)
        results = await asyncio.gather(
            *(store.accept(account.id, make_plan(), NOW) for _ in range(30))
        )
        granted = [result for result in results if result is not None]
        assert len(granted) == 10
        assert len({result.msgid for result in granted}) == 10
        assert await balance(store, account) == 0

    async def test_one_refusal_does_not_fail_the_others(self, store: Store) -> None:
        """In one burst, a poor account's refusal leaves a rich account's accepts intact."""
        rich = await new_account(store, "rich", 100)
        poor = await new_account(store, "poor", 0)
        results = await asyncio.gather(
            store.accept(rich.id, make_plan(), NOW),
            store.accept(poor.id, make_plan(), NOW),
            store.accept(rich.id, make_plan(), NOW),
        )
        assert [result is not None for result in results] == [True, False, True]
        assert await balance(store, rich) == 98
        assert await balance(store, poor) == 0

    # recipients ---------------------------------------------------------------------------
    async def test_recipients_follow_asked_msgid_order_then_given_order(self, store: Store) -> None:
        """recipients lists msgids as asked, each one's numbers in the order given."""
        account = await new_account(store)
        first = await accepted(store, account, make_plan("0933333333", "0911111111"))
        second = await accepted(store, account, make_plan("0922222222"))
        found = await store.recipients(account.id, [second.msgid, first.msgid])
        assert found == [
            RecipientStatus(second.msgid, "0922222222", State.QUEUED),
            RecipientStatus(first.msgid, "0933333333", State.QUEUED),
            RecipientStatus(first.msgid, "0911111111", State.QUEUED),
        ]

    async def test_recipients_never_show_another_accounts_msgid(self, store: Store) -> None:
        """Another account's msgids and unknown msgids are left out of recipients."""
        alice = await new_account(store, "alice")
        bob = await new_account(store, "bob")
        mine = await accepted(store, alice, make_plan("0911111111"))
        theirs = await accepted(store, bob, make_plan("0922222222"))
        found = await store.recipients(alice.id, [theirs.msgid, 42, mine.msgid, mine.msgid])
        assert found == [RecipientStatus(mine.msgid, "0911111111", State.QUEUED)]
        assert await store.recipients(alice.id, []) == []

    # cancel -----------------------------------------------------------------------------------
    async def test_cancel_refunds_waiting_recipients_and_surcharge(self, store: Store) -> None:
        """Cancelling a wholly WAITING request refunds every recipient and the surcharge."""
        account = await new_account(store, points=20)
        plan = make_plan("0911111111", "0922222222", points_each=3, surcharge=2, dlvtime=LATER)
        result = await accepted(store, account, plan)
        assert await balance(store, account) == 12
        cancelled = await store.cancel(account.id, result.msgid, NOW)
        assert cancelled is not None
        assert (cancelled.msgid, cancelled.recipients, cancelled.points) == (result.msgid, 2, 8)
        assert await balance(store, account) == 20
        states = await store.recipients(account.id, [result.msgid])
        assert [s.state for s in states] == [State.CANCEL, State.CANCEL]

    async def test_cancel_of_nothing_waiting_refunds_nothing(self, store: Store) -> None:
        """Cancelling a QUEUED request moves nothing and refunds nothing."""
        account = await new_account(store, points=20)
        result = await accepted(store, account, make_plan(surcharge=2))
        cancelled = await store.cancel(account.id, result.msgid, NOW)
        assert cancelled is not None
        assert (cancelled.recipients, cancelled.points) == (0, 0)
        assert await balance(store, account) == 17
        assert [s.state for s in await store.recipients(account.id, [result.msgid])] == [
            State.QUEUED
        ]

    async def test_second_cancel_refunds_nothing_more(self, store: Store) -> None:
        """A repeated cancel, also a concurrent one, never refunds twice."""
        account = await new_account(store, points=20)
        result = await accepted(store, account, make_plan(surcharge=1, dlvtime=LATER))
        outcomes = await asyncio.gather(
            store.cancel(account.id, result.msgid, NOW),
            store.cancel(account.id, result.msgid, NOW),
        )
        again = await store.cancel(account.id, result.msgid, NOW)
        refunds = sorted(o.points for o in (*outcomes, again) if o is not None)
        assert refunds == [0, 0, 2]
        assert await balance(store, account) == 20

    async def test_cancel_of_another_accounts_msgid_is_none(self, store: Store) -> None:
        """cancel answers None for an unknown msgid and for another account's msgid."""
        alice = await new_account(store, "alice")
        bob = await new_account(store, "bob")
        theirs = await accepted(store, bob, make_plan(dlvtime=LATER))
        assert await store.cancel(alice.id, theirs.msgid, NOW) is None
        assert await store.cancel(alice.id, 123, NOW) is None
        assert [s.state for s in await store.recipients(bob.id, [theirs.msgid])] == [State.WAITING]
        assert await balance(store, bob) == 99

    async def test_ledger_sum_equals_balance_after_everything(self, store: Store) -> None:
        """After topups, accepts, refusals and cancels, ledger_sum equals the balance."""
        account = await new_account(store, points=5)
        await store.topup("alice", 3, NOW)
        waiting = await accepted(store, account, make_plan("0911111111", dlvtime=LATER))
        await accepted(store, account, make_plan("0922222222", points_each=2))
        assert await store.accept(account.id, make_plan(points_each=50), NOW) is None
        await store.cancel(account.id, waiting.msgid, NOW)
        assert await balance(store, account) == 6

    async def test_close_flushes_pending_accepts(self, store: Store) -> None:
        """Accepts submitted before close() get their answer: close waits for the commit."""
        account = await new_account(store)
        *results, _ = await asyncio.gather(
            *(store.accept(account.id, make_plan(), NOW) for _ in range(20)), store.close()
        )
        assert all(isinstance(result, Accepted) for result in results)


class SqlStoreContract(StoreContract):
    async def test_refused_accept_writes_no_row(self, store: Store, row_count: RowCount) -> None:
        """An accept refused for points leaves no request, recipient or ledger row."""
        account = await new_account(store, points=1)
        before = [await row_count(t) for t in ("requests", "recipients", "ledger")]
        assert await store.accept(account.id, make_plan(points_each=2), NOW) is None
        assert [await row_count(t) for t in ("requests", "recipients", "ledger")] == before

    async def test_msgids_are_unique_across_two_stores(
        self, store: Store, make_store: MakeStore
    ) -> None:
        """Two stores (two processes' worth) on one database never hand out the same msgid."""
        account = await new_account(store, points=1000)
        other = await make_store()
        await other.open()
        try:
            msgids = [
                (await accepted(one, account, make_plan())).msgid
                for _ in range(5)
                for one in (store, other)
            ]
        finally:
            await other.close()
        assert len(set(msgids)) == len(msgids)
        assert await balance(store, account) == 990

    async def test_closed_accepts_survive_reopening(
        self, store: Store, make_store: MakeStore
    ) -> None:
        """Accepts answered before close() are in the database when it is opened again."""
        account = await new_account(store)
        *results, _ = await asyncio.gather(
            *(store.accept(account.id, make_plan(), NOW) for _ in range(20)), store.close()
        )
        reopened = await make_store()
        await reopened.open()
        try:
            msgids = [result.msgid for result in results if result is not None]
            assert len(await reopened.recipients(account.id, msgids)) == 20
            assert await balance(reopened, account) == 80
        finally:
            await reopened.close()

    async def test_accept_after_close_is_refused(self, store: Store) -> None:
        """accept on a closed store raises StoreError."""
        account = await new_account(store)
        await store.close()
        with pytest.raises(StoreError):
            await store.accept(account.id, make_plan(), NOW)

    async def test_msgids_start_at_ten_digits(self, store: Store) -> None:
        """The first msgid of a fresh database is 1,000,000,000."""
        account = await new_account(store)
        assert (await accepted(store, account, make_plan())).msgid == 1_000_000_000
