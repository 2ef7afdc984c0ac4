"""The behaviour every Store backend must show; each backend's test module subclasses these.

Subclasses provide the fixture ``store`` (upgraded and open). SQL backends subclass
``SqlStoreContract`` and also provide ``make_store`` (a new, unopened store on the same
database, as a second process would have) and ``row_count`` (rows in a table).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from smsgw.domain.lockout import LockPolicy
from smsgw.domain.model import Accepted, Account, RecipientPlan, RecipientStatus, SendPlan, State
from smsgw.errors import (
    AccountChangedError,
    AccountExistsError,
    StoreError,
    UnknownAccountError,
)
from smsgw.store.port import Store
from smsgw.store.records import (
    CallbackOutcome,
    IncomingReply,
    ReceiptApplied,
    ReceiptUpdate,
    ReplyKey,
    ReplyPart,
    SegmentRow,
    SubmitResult,
)

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


async def new_password(store: Store, username: str) -> Account:
    return await store.set_password_hash(username, "hash-of-another-secret")


async def new_api_key(store: Store, username: str) -> Account:
    return await store.set_api_key_hash(username, "hash-of-a-key")


async def disabled(store: Store, username: str) -> Account:
    return await store.set_disabled(username, disabled=True)


async def allow_list(store: Store, username: str) -> Account:
    return await store.set_allowed_ips(username, ["192.0.2.0/24"])


LOCK_POLICY = LockPolicy(3, 300.0, 900.0)  # 3 failures within 5 minutes lock for 15


async def locked(store: Store, username: str) -> Account:
    """Locked by failures, as counted by any process."""
    account = await store.get_account(username)
    assert account is not None
    for _ in range(3):
        await store.record_auth_failure(account.id, NOW, LOCK_POLICY)
    fresh = await store.get_account(username)
    assert fresh is not None
    return fresh


ACCOUNT_CHANGES = (new_password, new_api_key, disabled, allow_list, locked)


async def accepted(store: Store, account: Account, plan: SendPlan) -> Accepted:
    result = await store.accept(account.id, plan, NOW)
    assert result is not None
    return result


async def balance(store: Store, account: Account) -> int:
    current = await store.get_account(account.username)
    assert current is not None
    assert await store.ledger_sum(account.id) == current.balance
    return current.balance


class CoreContract:
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

    async def test_failures_lock_an_account_for_every_reader(self, store: Store) -> None:
        """The third failure within the window locks the account (shown by every read);
        failures while it is locked do not extend it; older failures do not count; a
        success's clear forgets the count."""
        account = await new_account(store)
        first = NOW - timedelta(seconds=301)  # outside the window of the later ones
        await store.record_auth_failure(account.id, first, LOCK_POLICY)
        await store.record_auth_failure(account.id, NOW, LOCK_POLICY)
        await store.record_auth_failure(account.id, NOW, LOCK_POLICY)
        counted = await store.get_account("alice")
        assert counted is not None
        assert (counted.locked_until, counted.recent_failures) == (None, 2)
        await store.clear_auth_failures(account.id)
        cleared = await store.get_account("alice")
        assert cleared is not None
        assert cleared.recent_failures == 0
        for _ in range(3):
            await store.record_auth_failure(account.id, NOW, LOCK_POLICY)
        until = NOW + timedelta(seconds=900)
        lock = await store.get_account("alice")
        assert lock is not None
        assert (lock.locked_until, lock.recent_failures) == (until, 0)
        assert lock.locked(NOW + timedelta(seconds=899))
        assert not lock.locked(until)
        await store.record_auth_failure(account.id, NOW + timedelta(seconds=60), LOCK_POLICY)
        assert await store.get_account("alice") == lock
        assert [a.locked_until for a in await store.list_accounts()] == [until]

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
        """In one burst, a poor account's refusal leaves a rich account's accepts intact,
        and uses no msgid: the accepts around it, and later ones, get consecutive msgids."""
        rich = await new_account(store, "rich", 100)
        poor = await new_account(store, "poor", 0)
        first, refused, second = await asyncio.gather(
            store.accept(rich.id, make_plan(), NOW),
            store.accept(poor.id, make_plan(), NOW),
            store.accept(rich.id, make_plan(), NOW),
        )
        assert first is not None
        assert refused is None
        assert second is not None
        assert await balance(store, rich) == 98
        assert await balance(store, poor) == 0
        later = await accepted(store, rich, make_plan())
        assert [second.msgid, later.msgid] == [first.msgid + 1, first.msgid + 2]

    # accept on an account as authenticated (seen) -----------------------------------------
    async def test_accept_on_the_account_as_it_is(self, store: Store) -> None:
        """``seen`` equal to the stored account's access: accepted like any accept; a topup
        since (the balance is not part of the access) does not count as a change."""
        account = await new_account(store, points=5)
        first = await store.accept(account.id, make_plan(), NOW, seen=account.access)
        await store.topup(account.username, 10, NOW)
        second = await store.accept(account.id, make_plan(), NOW, seen=account.access)
        assert first is not None
        assert second is not None
        assert await balance(store, account) == 13

    @pytest.mark.parametrize("change", ACCOUNT_CHANGES, ids=[c.__name__ for c in ACCOUNT_CHANGES])
    async def test_accept_refuses_an_account_changed_since_seen(
        self, store: Store, change: Callable[[Store, str], Awaitable[Account]]
    ) -> None:
        """An account changed after it was read (as by another node): AccountChangedError,
        nothing debited or stored, no msgid used; the fresh access is accepted again."""
        account = await new_account(store, points=10)
        before = await accepted(store, account, make_plan())
        fresh = await change(store, account.username)
        with pytest.raises(AccountChangedError):
            await store.accept(account.id, make_plan("0911111111"), NOW, seen=account.access)
        assert await balance(store, account) == 9
        assert await store.ledger_sum(account.id) == 9
        after = await store.accept(account.id, make_plan(), NOW, seen=fresh.access)
        assert after is not None
        assert after.msgid == before.msgid + 1

    async def test_accept_refuses_an_unknown_account_seen(self, store: Store) -> None:
        """``seen`` for an account id that does not exist (any more): AccountChangedError."""
        account = await new_account(store)
        with pytest.raises(AccountChangedError):
            await store.accept(987654, make_plan(), NOW, seen=account.access)

    async def test_a_changed_account_fails_only_its_own_accepts(self, store: Store) -> None:
        """In one burst, the accept seen on a stale copy is refused; the others, with the
        fresh access or without ``seen``, are accepted with consecutive msgids."""
        account = await new_account(store, points=10)
        other = await new_account(store, "bob", 10)
        fresh = await store.set_disabled(account.username, disabled=False)
        stale = replace(account, allowed_ips=("192.0.2.1",))
        results = await asyncio.gather(
            store.accept(account.id, make_plan(), NOW, seen=fresh.access),
            store.accept(account.id, make_plan(), NOW, seen=stale.access),
            store.accept(other.id, make_plan(), NOW),
            store.accept(account.id, make_plan(), NOW, seen=fresh.access),
            return_exceptions=True,
        )
        first, refused, theirs, last = results
        assert isinstance(refused, AccountChangedError)
        assert isinstance(first, Accepted)
        assert isinstance(theirs, Accepted)
        assert isinstance(last, Accepted)
        assert [theirs.msgid, last.msgid] == [first.msgid + 1, first.msgid + 2]
        assert await balance(store, account) == 8
        assert await balance(store, other) == 9

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


RESPONSE = "https://example.test/dlr"
REPLYURL = "https://example.test/mo?key=1"


def delivery_plan(
    *numbers: str,
    segments: int = 1,
    response: str | None = None,
    replyurl: str | None = None,
    replydays: int = 3,
    dlvtime: datetime | None = None,
) -> SendPlan:
    return replace(
        make_plan(*numbers, dlvtime=dlvtime),
        segments=segments,
        response=response,
        replyurl=replyurl,
        replydays=replydays,
    )


def receipt(smsc_id: str, state: State) -> ReceiptUpdate:
    return ReceiptUpdate("c1", (smsc_id,), state)


def mo(body: str, at: datetime = LATER, gateway_number: str | None = None) -> IncomingReply:
    return IncomingReply("c1", "0912345678", "0911000111", body, "UCS2", at, gateway_number)


def part(
    seqnum: int, text: str, *, reference: int = 7, total: int = 3, at: datetime = NOW
) -> ReplyPart:
    return ReplyPart("0912345678", "0911000111", reference, total, seqnum, text, "UCS2", "c1", at)


async def states(store: Store, account: Account, msgid: int) -> list[State]:
    return [status.state for status in await store.recipients(account.id, [msgid])]


async def submitted(store: Store, *smsc_ids: str) -> int:
    """Claim the one due recipient and record its segments' ids; its recipient id."""
    [due] = await store.claim_due(NOW, 1, 60)
    await store.record_submits([SubmitResult(due.recipient_id, "c1", smsc_ids)], NOW)
    return due.recipient_id


async def delivered_with_callbacks(
    store: Store, account: Account, prefix: str, count: int, at: datetime
) -> None:
    """``count`` recipients of ``account`` delivered at ``at`` (SMSC ids prefix0, prefix1,
    ...), each with its pending callback row."""
    numbers = [f"09{ord(prefix[0]):04d}{n:04d}" for n in range(count)]
    await accepted(store, account, delivery_plan(*numbers, response=RESPONSE))
    claimed = await store.claim_due(NOW, 10, 60)
    await store.record_submits(
        [SubmitResult(due.recipient_id, "c1", (f"{prefix}{n}",)) for n, due in enumerate(claimed)],
        NOW,
    )
    await store.apply_receipts([receipt(f"{prefix}{n}", State.DELIVRD) for n in range(count)], at)


async def settled_with_callback(store: Store, username: str = "alice", smsc_id: str = "s1") -> None:
    account = await new_account(store, username)
    await accepted(store, account, delivery_plan(response=RESPONSE))
    await submitted(store, smsc_id)
    await store.apply_receipts([receipt(smsc_id, State.DELIVRD)], NOW)


class DeliveryContract:
    # claim_due ----------------------------------------------------------------------------
    async def test_claim_takes_queued_recipients_enroute(self, store: Store) -> None:
        """A QUEUED recipient is claimed with its message, ENROUTE, attempts 1."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan("0911111111"))
        [due] = await store.claim_due(NOW, 10, 60)
        assert (due.msgid, due.account_id, due.number) == (result.msgid, account.id, "0911111111")
        assert (due.attempts, due.body, due.encoding, due.segments) == (1, "hello", "BIG5", 1)
        assert due.created_at == NOW
        assert await states(store, account, result.msgid) == [State.ENROUTE]
        assert await store.claim_due(NOW, 10, 60) == []

    async def test_waiting_recipient_is_claimed_only_when_due(self, store: Store) -> None:
        """A WAITING recipient is not claimed before its dlvtime, and is claimed at it;
        messages_due says beforehand what a claim would find."""
        account = await new_account(store)
        await accepted(store, account, delivery_plan(dlvtime=LATER))
        assert not await store.messages_due(LATER - timedelta(seconds=1))
        assert await store.claim_due(LATER - timedelta(seconds=1), 10, 60) == []
        assert await store.messages_due(LATER)
        assert len(await store.claim_due(LATER, 10, 60)) == 1

    async def test_claim_respects_limit_oldest_first(self, store: Store) -> None:
        """At most ``limit`` recipients are claimed, the longest due first."""
        account = await new_account(store)
        late = await store.accept(account.id, delivery_plan("0933333333"), NOW)
        early = await store.accept(
            account.id, delivery_plan("0911111111", "0922222222"), NOW - timedelta(minutes=1)
        )
        assert late is not None
        assert early is not None
        first = await store.claim_due(NOW, 2, 60)
        assert [d.number for d in first] == ["0911111111", "0922222222"]
        assert [d.msgid for d in await store.claim_due(NOW, 2, 60)] == [late.msgid]

    async def test_unrecorded_claim_is_claimed_again_after_its_lease(self, store: Store) -> None:
        """An ENROUTE recipient whose submit was never recorded is re-claimed after the lease."""
        account = await new_account(store)
        assert not await store.messages_due(NOW)
        await accepted(store, account, delivery_plan())
        assert await store.messages_due(NOW)
        await store.claim_due(NOW, 10, 60)
        assert not await store.messages_due(NOW + timedelta(seconds=59))
        assert await store.claim_due(NOW + timedelta(seconds=59), 10, 60) == []
        assert await store.messages_due(NOW + timedelta(seconds=60))
        [again] = await store.claim_due(NOW + timedelta(seconds=60), 10, 60)
        assert again.attempts == 2
        await store.record_submits([SubmitResult(again.recipient_id, "c1", ("id1",))], NOW)
        assert not await store.messages_due(NOW + timedelta(hours=1))
        assert await store.claim_due(NOW + timedelta(hours=1), 10, 60) == []

    # record_submits ---------------------------------------------------------------------------
    async def test_recorded_submit_stores_segment_ids(self, store: Store) -> None:
        """Accepted submits store one segment per SMSC id and the recipient stays ENROUTE."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan(segments=2))
        [due] = await store.claim_due(NOW, 10, 60)
        await store.record_submits([SubmitResult(due.recipient_id, "c1", ("a", "b"))], NOW)
        assert await store.recipient_segments(due.recipient_id) == [
            SegmentRow(1, "c1", "a", None, None),
            SegmentRow(2, "c1", "b", None, None),
        ]
        assert await states(store, account, result.msgid) == [State.ENROUTE]

    async def test_retry_goes_back_to_queued_until_retry_at(self, store: Store) -> None:
        """A temporary failure makes the recipient QUEUED again, due at retry_at."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan())
        [due] = await store.claim_due(NOW, 10, 60)
        retry_at = NOW + timedelta(seconds=30)
        await store.record_submits([SubmitResult(due.recipient_id, "c1", retry_at=retry_at)], NOW)
        assert await states(store, account, result.msgid) == [State.QUEUED]
        assert await store.claim_due(retry_at - timedelta(seconds=1), 10, 60) == []
        [again] = await store.claim_due(retry_at, 10, 60)
        assert again.attempts == 2

    async def test_rejected_submit_is_final_with_its_callback(self, store: Store) -> None:
        """A REJECTD submit settles the recipient and queues its delivery report."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan(response=RESPONSE))
        [due] = await store.claim_due(NOW, 10, 60)
        await store.record_submits(
            [SubmitResult(due.recipient_id, "c1", final_state=State.REJECTD)], NOW
        )
        assert await states(store, account, result.msgid) == [State.REJECTD]
        [job] = await store.claim_callbacks(NOW, 10, 30)
        assert job.url == (
            f"{RESPONSE}?msgid={result.msgid}&statuscode=-10&statusstr=REJECTD&dstaddr=0912345678"
        )
        assert (job.kind, job.msgid, job.number, job.attempts) == (
            "dlr",
            result.msgid,
            "0912345678",
            0,
        )

    async def test_stale_submit_result_is_ignored(self, store: Store) -> None:
        """A result for a recipient that is no longer ENROUTE changes nothing."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan())
        [due] = await store.claim_due(NOW, 10, 60)
        rejected = SubmitResult(due.recipient_id, "c1", final_state=State.REJECTD)
        await store.record_submits([rejected], NOW)
        await store.record_submits([SubmitResult(due.recipient_id, "c1", ("x",))], NOW)
        assert await states(store, account, result.msgid) == [State.REJECTD]
        assert await store.recipient_segments(due.recipient_id) == []

    async def test_receipt_before_its_submit_is_held_then_applied(self, store: Store) -> None:
        """A receipt for an unknown id is held, counted, and applied when the id is recorded."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan(response=RESPONSE))
        [due] = await store.claim_due(NOW, 10, 60)
        early = await store.apply_receipts([receipt("id9", State.DELIVRD)], NOW)
        assert early == [ReceiptApplied(matched=False)]
        assert await store.held_receipt_count() == 1
        await store.record_submits([SubmitResult(due.recipient_id, "c1", ("id9",))], LATER)
        assert await states(store, account, result.msgid) == [State.DELIVRD]
        assert await store.held_receipt_count() == 0
        assert (await store.callback_counts())["pending"] == 1

    # apply_receipts -----------------------------------------------------------------------------
    async def test_single_part_receipt_settles_the_recipient(self, store: Store) -> None:
        """A DELIVRD receipt for a one-part message makes the recipient DELIVRD."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan(response=RESPONSE))
        rid = await submitted(store, "s1")
        applied = await store.apply_receipts([receipt("s1", State.DELIVRD)], NOW)
        assert applied == [ReceiptApplied(matched=True, recipient_final=State.DELIVRD)]
        assert await states(store, account, result.msgid) == [State.DELIVRD]
        assert (await store.recipient_segments(rid))[0].state is State.DELIVRD
        [job] = await store.claim_callbacks(NOW, 10, 30)
        assert job.url.endswith("statuscode=0&statusstr=DELIVRD&dstaddr=0912345678")

    async def test_three_part_message_is_final_when_all_parts_are(self, store: Store) -> None:
        """A 3-part message settles on its last receipt; one UNDELIV part makes it UNDELIV."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan(segments=3))
        await submitted(store, "p1", "p2", "p3")
        assert await store.apply_receipts(
            [receipt("p1", State.DELIVRD), receipt("p2", State.UNDELIV)], NOW
        ) == [ReceiptApplied(matched=True), ReceiptApplied(matched=True)]
        assert await states(store, account, result.msgid) == [State.ENROUTE]
        [last] = await store.apply_receipts([receipt("p3", State.DELIVRD)], NOW)
        assert last.recipient_final is State.UNDELIV
        assert await states(store, account, result.msgid) == [State.UNDELIV]

    async def test_concurrent_part_receipts_settle_once(self, store: Store) -> None:
        """Receipts for all parts arriving at once settle the recipient exactly once."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan(segments=3, response=RESPONSE))
        await submitted(store, "p1", "p2", "p3")
        answers = await asyncio.gather(
            *(store.apply_receipts([receipt(i, State.DELIVRD)], NOW) for i in ("p1", "p2", "p3"))
        )
        finals = [a[0].recipient_final for a in answers if a[0].recipient_final is not None]
        assert finals == [State.DELIVRD]
        assert await states(store, account, result.msgid) == [State.DELIVRD]
        assert (await store.callback_counts())["pending"] == 1

    async def test_duplicate_receipt_changes_nothing(self, store: Store) -> None:
        """A second receipt for a settled segment is matched but changes nothing."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan(response=RESPONSE))
        await submitted(store, "s1")
        await store.apply_receipts([receipt("s1", State.DELIVRD)], NOW)
        again = await store.apply_receipts([receipt("s1", State.UNDELIV)], LATER)
        assert again == [ReceiptApplied(matched=True)]
        assert await states(store, account, result.msgid) == [State.DELIVRD]
        assert (await store.callback_counts())["pending"] == 1

    async def test_unknown_receipts_are_held_and_counted(self, store: Store) -> None:
        """Receipts matching no segment are held and counted, never an error."""
        answers = await store.apply_receipts(
            [receipt("nope", State.DELIVRD), ReceiptUpdate("c1", ("x1", "x2"), State.UNDELIV)],
            NOW,
        )
        assert answers == [ReceiptApplied(matched=False), ReceiptApplied(matched=False)]
        assert await store.held_receipt_count() == 2

    async def test_receipt_matches_any_form_of_its_id(self, store: Store) -> None:
        """A receipt whose id comes in decimal and hex matches the segment's hex id."""
        account = await new_account(store)
        await accepted(store, account, delivery_plan())
        await submitted(store, "1a2b")
        answers = await store.apply_receipts(
            [ReceiptUpdate("c1", ("6699", "1a2b"), State.DELIVRD)], NOW
        )
        assert answers == [ReceiptApplied(matched=True, recipient_final=State.DELIVRD)]

    async def test_receipt_matches_only_its_connector(self, store: Store) -> None:
        """The same id on another connector is another message: held, not matched."""
        account = await new_account(store)
        await accepted(store, account, delivery_plan())
        await submitted(store, "s1")
        answers = await store.apply_receipts([ReceiptUpdate("c2", ("s1",), State.DELIVRD)], NOW)
        assert answers == [ReceiptApplied(matched=False)]

    async def test_enroute_receipt_is_not_final(self, store: Store) -> None:
        """An ENROUTE receipt is matched but settles neither segment nor recipient."""
        account = await new_account(store)
        result = await accepted(store, account, delivery_plan())
        rid = await submitted(store, "s1")
        answers = await store.apply_receipts([receipt("s1", State.ENROUTE)], NOW)
        assert answers == [ReceiptApplied(matched=True)]
        assert (await store.recipient_segments(rid))[0].state is None
        assert await states(store, account, result.msgid) == [State.ENROUTE]

    async def test_no_callback_without_response(self, store: Store) -> None:
        """A request without ``response`` gets no callback row when it settles."""
        account = await new_account(store)
        await accepted(store, account, delivery_plan())
        await submitted(store, "s1")
        await store.apply_receipts([receipt("s1", State.DELIVRD)], NOW)
        assert await store.callback_counts() == {"pending": 0, "sent": 0, "failed": 0}

    async def test_unanswered_recipients_expire_unknown(self, store: Store) -> None:
        """ENROUTE recipients submitted before the cut become UNKNOWN, with a callback."""
        account = await new_account(store)
        result = await accepted(
            store, account, delivery_plan("0911111111", "0922222222", response=RESPONSE)
        )
        claimed = await store.claim_due(NOW, 10, 60)
        await store.record_submits([SubmitResult(claimed[0].recipient_id, "c1", ("o",))], NOW)
        await store.record_submits([SubmitResult(claimed[1].recipient_id, "c1", ("n",))], LATER)
        assert await store.expire_unanswered(LATER, LATER) == 1
        assert await states(store, account, result.msgid) == [State.UNKNOWN, State.ENROUTE]
        assert (await store.callback_counts())["pending"] == 1
        assert await store.expire_unanswered(LATER, LATER) == 0

    # callbacks --------------------------------------------------------------------------------
    async def test_callback_claim_leases_the_row(self, store: Store) -> None:
        """A claimed callback is not claimed again until its lease runs out; callbacks_due
        says beforehand what a claim would find."""
        assert not await store.callbacks_due(NOW)
        await settled_with_callback(store)
        assert await store.callbacks_due(NOW)
        [job] = await store.claim_callbacks(NOW, 10, 30)
        assert not await store.callbacks_due(NOW + timedelta(seconds=29))
        assert await store.claim_callbacks(NOW + timedelta(seconds=29), 10, 30) == []
        assert await store.callbacks_due(NOW + timedelta(seconds=30))
        [again] = await store.claim_callbacks(NOW + timedelta(seconds=30), 10, 30)
        assert again.id == job.id

    async def test_callback_claim_is_fair_between_accounts(self, store: Store) -> None:
        """per_account caps one account's rows in a claim, so another's are claimed too."""
        alice = await new_account(store, "alice")
        await delivered_with_callbacks(store, alice, "a", 5, NOW)
        bob = await new_account(store, "bob")
        await accepted(store, bob, delivery_plan(response=RESPONSE))
        await submitted(store, "b0")
        await store.apply_receipts([receipt("b0", State.DELIVRD)], LATER)
        jobs = await store.claim_callbacks(LATER, 10, 30, per_account=2)
        owners = sorted(job.account_id for job in jobs)
        assert owners == sorted([alice.id, alice.id, bob.id])
        rest = await store.claim_callbacks(LATER, 10, 30)
        assert [job.account_id for job in rest] == [alice.id] * 3

    async def test_callback_claim_takes_accounts_in_turns(self, store: Store) -> None:
        """A claim smaller than the backlog shares itself between accounts, even when one
        account's callbacks are all older than the other's."""
        alice = await new_account(store, "alice")
        await delivered_with_callbacks(store, alice, "a", 6, NOW)
        bob = await new_account(store, "bob")
        await delivered_with_callbacks(store, bob, "b", 2, LATER)
        jobs = await store.claim_callbacks(LATER, 4, 30, per_account=100)
        assert sorted(job.account_id for job in jobs) == sorted([alice.id] * 2 + [bob.id] * 2)
        oldest_alice = min(job.id for job in jobs if job.account_id == alice.id)
        rest = await store.claim_callbacks(LATER, 10, 30, per_account=100)
        assert [job.account_id for job in rest] == [alice.id] * 4
        assert all(job.id > oldest_alice for job in rest)  # alice's oldest went first

    async def test_delivered_callback_is_sent(self, store: Store) -> None:
        """A delivered callback is marked sent and never claimed again."""
        await settled_with_callback(store)
        [job] = await store.claim_callbacks(NOW, 10, 30)
        await store.finish_callbacks([CallbackOutcome(job.id, delivered=True)], NOW)
        [row] = await store.list_callbacks(None, None, 10)
        assert (row.state, row.sent_at, row.attempts) == ("sent", NOW, 0)
        assert not await store.callbacks_due(LATER)
        assert await store.claim_callbacks(LATER, 10, 30) == []

    async def test_failed_callback_retries_then_fails(self, store: Store) -> None:
        """A failed attempt counts and waits for retry_at; without retry_at it is failed."""
        await settled_with_callback(store)
        [job] = await store.claim_callbacks(NOW, 10, 30)
        retry_at = NOW + timedelta(minutes=2)
        await store.finish_callbacks(
            [CallbackOutcome(job.id, delivered=False, error="HTTP 500", retry_at=retry_at)], NOW
        )
        assert await store.claim_callbacks(retry_at - timedelta(seconds=1), 10, 30) == []
        [again] = await store.claim_callbacks(retry_at, 10, 30)
        assert again.attempts == 1
        await store.finish_callbacks(
            [CallbackOutcome(job.id, delivered=False, error="timeout")], retry_at
        )
        [row] = await store.list_callbacks("failed", None, 10)
        assert (row.attempts, row.last_error, row.username) == (2, "timeout", "alice")
        assert await store.callback_counts() == {"pending": 0, "sent": 0, "failed": 1}

    async def test_retry_failed_callbacks_by_account(self, store: Store) -> None:
        """retry_failed_callbacks re-queues failed rows of the named account only."""
        await settled_with_callback(store, "alice")
        await settled_with_callback(store, "bob", smsc_id="s2")
        jobs = await store.claim_callbacks(NOW, 10, 30)
        await store.finish_callbacks(
            [CallbackOutcome(j.id, delivered=False, error="down") for j in jobs], NOW
        )
        assert await store.retry_failed_callbacks("bob", LATER) == 1
        [job] = await store.claim_callbacks(LATER, 10, 30)
        assert (job.attempts, job.msgid) == (0, jobs[1].msgid)
        assert [r.username for r in await store.list_callbacks("failed", None, 10)] == ["alice"]
        assert await store.retry_failed_callbacks(None, LATER) == 1
        assert len(await store.list_callbacks("pending", "alice", 10)) == 1
        with pytest.raises(UnknownAccountError):
            await store.retry_failed_callbacks("nobody", LATER)

    async def test_callback_job_carries_the_webhook_secret_unprinted(self, store: Store) -> None:
        """A claimed job carries the account's webhook secret, never in its repr."""
        await settled_with_callback(store)
        await store.set_webhook_secret("alice", "sign-me")
        [job] = await store.claim_callbacks(NOW, 10, 30)
        assert job.webhook_secret == "sign-me"
        assert "sign-me" not in repr(job)
        await store.set_webhook_secret("alice", None)
        [job] = await store.claim_callbacks(LATER, 10, 30)
        assert job.webhook_secret is None

    # replies ----------------------------------------------------------------------------------
    async def test_reply_matches_the_most_recent_message(self, store: Store) -> None:
        """A reply goes to the latest message to that handset with a replyurl, as an MO row."""
        account = await new_account(store)
        await store.accept(account.id, delivery_plan(replyurl=REPLYURL), NOW - timedelta(days=1))
        latest = await accepted(store, account, delivery_plan(replyurl=REPLYURL))
        await store.accept(account.id, delivery_plan(), NOW + timedelta(minutes=1))
        stored = await store.store_reply(mo("yes please"), LATER)
        assert stored.msgid == latest.msgid
        [job] = await store.claim_callbacks(LATER, 10, 30)
        assert job.kind == "mo"
        assert job.url == (
            f"{REPLYURL}&msgid={latest.msgid}&srcaddr=0912345678&dstaddr=0911000111"
            "&smbody=yes%20please&encoding=UCS2&timestamp=2025%2F03%2F04%2015%3A06%3A07"
        )

    async def test_reply_after_replydays_is_unmatched(self, store: Store) -> None:
        """A reply after the message's replydays ran out is stored unmatched."""
        account = await new_account(store)
        await accepted(store, account, delivery_plan(replyurl=REPLYURL, replydays=1))
        inside = await store.store_reply(mo("ok", at=NOW + timedelta(hours=23)), NOW)
        outside = await store.store_reply(mo("late", at=NOW + timedelta(days=1, seconds=1)), NOW)
        assert inside.msgid is not None
        assert outside.msgid is None
        unmatched = await store.list_replies(unmatched_only=True, limit=10)
        assert [(r.body, r.matched, r.msgid) for r in unmatched] == [("late", False, None)]
        assert [r.body for r in await store.list_replies(unmatched_only=False, limit=10)] == [
            "late",
            "ok",
        ]

    async def test_reply_to_another_gateway_number_is_unmatched(self, store: Store) -> None:
        """A reply written to a number other than the connector's own matches nothing."""
        account = await new_account(store)
        await accepted(store, account, delivery_plan(replyurl=REPLYURL))
        stored = await store.store_reply(mo("hi", gateway_number="0911999999"), LATER)
        assert stored.msgid is None
        [row] = await store.list_replies(unmatched_only=True, limit=10)
        assert (row.connector, row.srcaddr, row.dstaddr) == ("c1", "0912345678", "0911000111")
        assert await store.callback_counts() == {"pending": 0, "sent": 0, "failed": 0}

    async def test_reply_parts_are_kept_until_their_reply_completes(self, store: Store) -> None:
        """Parts come back in seqnum order with those kept before; a part kept already
        stays as it was; completing stores the reply and drops the parts, once."""
        assert await store.add_reply_part(part(2, "lo ")) == [part(2, "lo ")]
        assert await store.add_reply_part(part(1, "hel")) == [part(1, "hel"), part(2, "lo ")]
        assert await store.add_reply_part(part(1, "again")) == [part(1, "hel"), part(2, "lo ")]
        other = part(1, "x", reference=8)  # another reply of the same handset
        assert await store.add_reply_part(other) == [other]
        stranger = replace(part(1, "y"), srcaddr="0922222222")  # same reference, another handset
        assert await store.add_reply_part(stranger) == [stranger]
        whole = await store.add_reply_part(part(3, "you"))
        assert [p.text for p in whole] == ["hel", "lo ", "you"]
        key = whole[0].key
        stored = await store.complete_reply(key, mo("hello you"), LATER)
        assert stored is not None
        assert await store.complete_reply(key, mo("hello you"), LATER) is None
        assert [r.body for r in await store.list_replies(unmatched_only=False, limit=10)] == [
            "hello you"
        ]
        assert await store.stale_reply_parts(LATER, 10) == [other, stranger]
        # The key is free again: a later reply with the same reference starts afresh.
        assert await store.add_reply_part(part(3, "new")) == [part(3, "new")]

    async def test_reply_parts_keep_their_text_exactly(self, store: Store) -> None:
        """Half of a UTF-16 pair (a handset may split one across parts) and U+0000 come
        back as they went in."""
        kept = part(1, "ab\ud83d", total=2)
        assert await store.add_reply_part(kept) == [kept]
        nul = part(2, "\ude00\x00c", total=2)
        assert await store.add_reply_part(nul) == [kept, nul]

    async def test_stale_reply_parts_by_their_earliest_part(self, store: Store) -> None:
        """Replies whose earliest part came before the cut-off, oldest first, whole, at
        most ``limit`` of them."""
        older = [part(2, "b", reference=1, at=NOW), part(1, "a", reference=1, at=LATER)]
        old = [part(1, "c", reference=2, at=NOW + timedelta(minutes=1))]
        fresh = [part(1, "d", reference=3, at=LATER)]
        for each in (*older, *old, *fresh):
            await store.add_reply_part(each)
        cut = NOW + timedelta(hours=1)
        assert await store.stale_reply_parts(cut, 10) == [older[1], older[0], *old]
        assert await store.stale_reply_parts(cut, 1) == [older[1], older[0]]
        assert await store.stale_reply_parts(NOW, 10) == []
        assert ReplyKey("0912345678", "0911000111", 1, 3) == older[0].key

    # metrics ----------------------------------------------------------------------------------
    async def test_state_counts_and_ledger(self, store: Store) -> None:
        """state_counts counts recipients per state; delivery never moves points."""
        account = await new_account(store, points=100)
        await accepted(store, account, delivery_plan("0911111111", "0922222222", response=RESPONSE))
        await accepted(store, account, delivery_plan(dlvtime=LATER))
        await submitted(store, "s1")
        await store.apply_receipts([receipt("s1", State.DELIVRD)], NOW)
        counts = await store.state_counts()
        assert {s: n for s, n in counts.items() if n} == {
            State.DELIVRD: 1,
            State.QUEUED: 1,
            State.WAITING: 1,
        }
        assert set(counts) == set(State)
        assert await balance(store, account) == 97


class StoreContract(CoreContract, DeliveryContract):
    """Everything a backend must do."""


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

    async def test_concurrent_claimers_never_overlap(
        self, store: Store, make_store: MakeStore
    ) -> None:
        """Two stores (two nodes or processes) claiming at once never share a recipient."""
        account = await new_account(store)
        numbers = [f"09111111{i:02d}" for i in range(12)]
        await accepted(store, account, delivery_plan(*numbers))
        other = await make_store()
        await other.open()
        try:
            rounds = [
                await asyncio.gather(store.claim_due(NOW, 4, 60), other.claim_due(NOW, 4, 60))
                for _ in range(2)
            ]
        finally:
            await other.close()
        claimed = [d.recipient_id for pair in rounds for batch in pair for d in batch]
        assert len(claimed) == 12
        assert len(set(claimed)) == 12

    async def test_msgids_start_at_ten_digits(self, store: Store) -> None:
        """The first msgid of a fresh database is 1,000,000,000."""
        account = await new_account(store)
        assert (await accepted(store, account, make_plan())).msgid == 1_000_000_000
