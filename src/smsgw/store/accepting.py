"""What every backend decides the same way when it accepts send plans.

Pure functions: the SQL backends call them inside their batch transaction, the memory
backend calls them directly, so all three debit and grant identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Literal

from smsgw.domain.model import Accepted, Access, SendPlan, State
from smsgw.errors import AccountChangedError, StoreError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime


@dataclass(frozen=True, slots=True)
class AcceptItem:
    account_id: int
    plan: SendPlan
    now: datetime
    # The account's `Account.access` as the request was authenticated, when that used a
    # remembered copy: the item is refused (AccountChangedError) unless it still holds.
    seen: Access | None = None


class Changed(Enum):
    """A batch's answer for an item whose account changed since ``seen`` was read."""

    ACCOUNT = "account"


# What a backend's batch answers for each item: accepted, not covered (None), or changed.
Answer = Accepted | None | Literal[Changed.ACCOUNT]


def settle(answer: Answer) -> Accepted | None:
    """The answer `Store.accept` returns: AccountChangedError for a changed account."""
    if answer is Changed.ACCOUNT:
        raise AccountChangedError("the account changed since it was authenticated")
    return answer


def changed(item: AcceptItem, access: Mapping[int, Access] | None) -> bool:
    """The item names the account as authenticated and it is not so (or gone) any more
    (``access``: the accounts' current `Account.access`; None if not read)."""
    if item.seen is None:
        return False
    return access is None or access.get(item.account_id) != item.seen


def refusal(
    item: AcceptItem, access: Mapping[int, Access] | None
) -> Literal[Changed.ACCOUNT] | None:
    """The answer for an item `grant` refused."""
    return Changed.ACCOUNT if changed(item, access) else None


def seen_any(items: Sequence[AcceptItem]) -> bool:
    """Some item needs the accounts' `Account.access` read in the batch."""
    return any(item.seen is not None for item in items)


def check_plan(plan: SendPlan) -> None:
    """Refuse a plan that would break a constraint, before it can fail a whole batch."""
    numbers = [recipient.number for recipient in plan.recipients]
    if not numbers:
        raise StoreError("a request needs at least one recipient")
    if len(set(numbers)) < len(numbers):
        raise StoreError("a request lists the same number twice")
    if plan.points < 0 or any(recipient.points < 0 for recipient in plan.recipients):
        raise StoreError("points must not be negative")


def initial_state(plan: SendPlan, now: datetime) -> State:
    return State.WAITING if plan.dlvtime is not None and plan.dlvtime > now else State.QUEUED


def grant(
    balances: Mapping[int, int],
    items: Sequence[AcceptItem],
    access: Mapping[int, Access] | None = None,
) -> list[bool]:
    """Which items the balances cover, taken in arrival order; never an item whose account
    `changed` (``access``: the accounts' current `Account.access`, needed when any item has
    ``seen``).

    Equivalent to running ``UPDATE accounts SET balance = balance - points WHERE id = ? AND
    balance >= points`` once per item in order, with the accounts locked for the batch.
    """
    left = dict(balances)
    granted: list[bool] = []
    for item in items:
        balance = left.get(item.account_id)
        if changed(item, access):
            granted.append(False)
        elif balance is not None and balance >= item.plan.points:
            left[item.account_id] = balance - item.plan.points
            granted.append(True)
        else:
            granted.append(False)
    return granted


def debits(items: Sequence[AcceptItem], granted: Sequence[bool]) -> dict[int, int]:
    """Total points to take from each account for the granted items."""
    totals: dict[int, int] = {}
    for item, covered in zip(items, granted, strict=True):
        if covered:
            totals[item.account_id] = totals.get(item.account_id, 0) + item.plan.points
    return totals
