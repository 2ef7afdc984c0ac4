"""The in-memory reference Store: simple enough to be obviously right.

Used by the unit tests of other layers, and as the model the SQL backends are checked
against by the contract suite. Nothing survives the process. Every method runs without an
``await`` in between its reads and writes, so asyncio tasks cannot interleave inside one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from smsgw.domain.model import Accepted, Account, Cancelled, RecipientStatus, SendPlan, State
from smsgw.errors import AccountExistsError, StoreError, UnknownAccountError
from smsgw.store.accepting import AcceptItem, check_plan, grant, initial_state
from smsgw.store.msgids import FIRST_MSGID
from smsgw.store.schema import latest_version

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

LedgerKind = Literal["topup", "debit", "refund"]


@dataclass(slots=True)
class _Recipient:
    number: str
    state: State
    points: int


@dataclass(slots=True)
class _Request:
    account_id: int
    plan: SendPlan
    recipients: list[_Recipient]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    account_id: int
    delta: int
    kind: LedgerKind
    msgid: int | None
    at: datetime


@dataclass(slots=True)
class MemoryStore:
    accounts: dict[str, Account] = field(default_factory=dict)
    requests: dict[int, _Request] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    next_msgid: int = FIRST_MSGID
    closed: bool = False
    failures: list[Exception] = field(default_factory=list)

    async def open(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def upgrade(self) -> list[int]:
        return []

    async def schema_version(self) -> int:
        return latest_version("sqlite")

    # accounts -------------------------------------------------------------------------
    async def create_account(
        self, username: str, password_hash: str, points: int, now: datetime
    ) -> Account:
        self._check_open()
        if username in self.accounts:
            raise AccountExistsError(f"account {username!r} exists already")
        account = Account(
            id=len(self.accounts) + 1,
            username=username,
            password_hash=password_hash,
            api_key_hash=None,
            balance=points,
            disabled=False,
            allowed_ips=(),
            created_at=now,
        )
        self.accounts[username] = account
        self.ledger.append(LedgerEntry(account.id, points, "topup", None, now))
        return account

    async def get_account(self, username: str) -> Account | None:
        self._check_open()
        return self.accounts.get(username)

    async def list_accounts(self) -> list[Account]:
        self._check_open()
        return sorted(self.accounts.values(), key=lambda account: account.username)

    async def set_password_hash(self, username: str, password_hash: str) -> Account:
        return self._update(username, password_hash=password_hash)

    async def set_api_key_hash(self, username: str, api_key_hash: str | None) -> Account:
        return self._update(username, api_key_hash=api_key_hash)

    async def set_allowed_ips(self, username: str, allowed_ips: Sequence[str]) -> Account:
        return self._update(username, allowed_ips=tuple(allowed_ips))

    async def set_disabled(self, username: str, disabled: bool) -> Account:
        return self._update(username, disabled=disabled)

    async def topup(self, username: str, points: int, now: datetime) -> Account:
        account = self._update(username)
        self._move_points(account.id, points, "topup", None, now)
        return self._update(username)

    async def ledger_sum(self, account_id: int) -> int:
        self._check_open()
        return sum(entry.delta for entry in self.ledger if entry.account_id == account_id)

    # the hot path ---------------------------------------------------------------------
    async def accept(self, account_id: int, plan: SendPlan, now: datetime) -> Accepted | None:
        self._check_open()
        if self.failures:
            raise self.failures.pop(0)
        check_plan(plan)
        balances = {account.id: account.balance for account in self.accounts.values()}
        if not grant(balances, [AcceptItem(account_id, plan, now)])[0]:
            return None
        msgid = self.next_msgid
        self.next_msgid += 1
        state = initial_state(plan, now)
        recipients = [_Recipient(r.number, state, r.points) for r in plan.recipients]
        self.requests[msgid] = _Request(account_id, plan, recipients)
        self._move_points(account_id, -plan.points, "debit", msgid, now)
        return Accepted(msgid=msgid, points=plan.points)

    # queries and cancel ---------------------------------------------------------------
    async def recipients(self, account_id: int, msgids: Sequence[int]) -> list[RecipientStatus]:
        self._check_open()
        found: list[RecipientStatus] = []
        for msgid in dict.fromkeys(msgids):
            request = self.requests.get(msgid)
            if request is not None and request.account_id == account_id:
                found += [RecipientStatus(msgid, r.number, r.state) for r in request.recipients]
        return found

    async def cancel(self, account_id: int, msgid: int, now: datetime) -> Cancelled | None:
        self._check_open()
        request = self.requests.get(msgid)
        if request is None or request.account_id != account_id:
            return None
        waiting = [r for r in request.recipients if r.state is State.WAITING]
        for recipient in waiting:
            recipient.state = State.CANCEL
        refund = sum(recipient.points for recipient in waiting)
        if waiting and all(r.state is State.CANCEL for r in request.recipients):
            refund += request.plan.reply_surcharge
        if refund:
            self._move_points(account_id, refund, "refund", msgid, now)
        return Cancelled(msgid=msgid, recipients=len(waiting), points=refund)

    # test double helpers -------------------------------------------------------------------
    def fail_next_accepts(self, count: int, error: Exception | None = None) -> None:
        """Make the next ``count`` accepts raise ``error`` (a StoreError by default), as a
        failed commit would: nothing is written."""
        self.failures += [error or StoreError("simulated commit failure") for _ in range(count)]

    async def points_of_live_recipients(self, account_id: int) -> int:
        """Points still charged for the account's requests: the points of every recipient
        not cancelled, plus the reply surcharge of each request not wholly cancelled."""
        total = 0
        for request in self.requests.values():
            live = [r for r in request.recipients if r.state is not State.CANCEL]
            if request.account_id == account_id and live:
                total += sum(r.points for r in live) + request.plan.reply_surcharge
        return total

    # helpers ----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise StoreError("store is closed")

    def _update(self, username: str, **changes: object) -> Account:
        self._check_open()
        account = self.accounts.get(username)
        if account is None:
            raise UnknownAccountError(f"no account {username!r}")
        account = replace(account, **changes)  # type: ignore[arg-type]
        self.accounts[username] = account
        return account

    def _move_points(
        self, account_id: int, delta: int, kind: LedgerKind, msgid: int | None, now: datetime
    ) -> None:
        for username, account in self.accounts.items():
            if account.id == account_id:
                self.accounts[username] = replace(account, balance=account.balance + delta)
        self.ledger.append(LedgerEntry(account_id, delta, kind, msgid, now))
