"""What every backend decides the same way when it accepts send plans.

Pure functions: the SQL backends call them inside their batch transaction, the memory
backend calls them directly, so all three debit and grant identically.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smsgw.domain.model import SendPlan, State
from smsgw.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime


@dataclass(frozen=True, slots=True)
class AcceptItem:
    account_id: int
    plan: SendPlan
    now: datetime


def check_plan(plan: SendPlan) -> None:
    """Refuse a plan that would break a constraint, before it can fail a whole batch."""
    numbers = Counter(recipient.number for recipient in plan.recipients)
    if not numbers:
        raise StoreError("a request needs at least one recipient")
    if max(numbers.values()) > 1:
        raise StoreError("a request lists the same number twice")
    if plan.points < 0 or any(recipient.points < 0 for recipient in plan.recipients):
        raise StoreError("points must not be negative")


def initial_state(plan: SendPlan, now: datetime) -> State:
    return State.WAITING if plan.dlvtime is not None and plan.dlvtime > now else State.QUEUED


def grant(balances: Mapping[int, int], items: Sequence[AcceptItem]) -> list[bool]:
    """Which items the balances cover, taken in arrival order.

    Equivalent to running ``UPDATE accounts SET balance = balance - points WHERE id = ? AND
    balance >= points`` once per item in order, with the accounts locked for the batch.
    """
    left = dict(balances)
    granted: list[bool] = []
    for item in items:
        balance = left.get(item.account_id)
        if balance is not None and balance >= item.plan.points:
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
