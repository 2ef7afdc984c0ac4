"""The store port: everything the gateway keeps, behind one typing.Protocol.

Backends: ``memory`` (reference, for unit tests), ``sqlite`` (default) and ``postgres``.
All three pass ``tests/store/contract.py``.

Invariants every backend keeps:
- ``accept`` commits the request, its recipients and the debit in one transaction, and
  returns only after that transaction is durable. Many concurrent ``accept`` calls share one
  commit (group commit); one request's failure (insufficient points) never fails another's.
- msgids are positive, at most 16 digits, unique across every node sharing the database.
- Every change to a balance is a ledger row: balance == sum(ledger deltas) for each account.
- A query never shows another account's msgid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from smsgw.domain.model import Accepted, Account, Cancelled, RecipientStatus, SendPlan


class Store(Protocol):
    async def open(self) -> None:
        """Connect and check the schema is current (raises StoreError if it is not)."""

    async def close(self) -> None:
        """Flush pending group commits, then release connections."""

    async def upgrade(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""

    async def schema_version(self) -> int: ...

    # accounts -------------------------------------------------------------------------
    async def create_account(
        self, username: str, password_hash: str, points: int, now: datetime
    ) -> Account:
        """Raises AccountExistsError. The initial points are a ledger row of kind 'topup'."""

    async def get_account(self, username: str) -> Account | None: ...

    async def list_accounts(self) -> list[Account]: ...

    async def set_password_hash(self, username: str, password_hash: str) -> Account: ...

    async def set_api_key_hash(self, username: str, api_key_hash: str | None) -> Account: ...

    async def set_allowed_ips(self, username: str, allowed_ips: Sequence[str]) -> Account: ...

    async def set_disabled(self, username: str, disabled: bool) -> Account: ...

    async def topup(self, username: str, points: int, now: datetime) -> Account:
        """Add points (may be negative for a correction); a ledger row of kind 'topup'."""

    async def ledger_sum(self, account_id: int) -> int:
        """Sum of every ledger delta of the account (equals its balance)."""

    # the hot path ---------------------------------------------------------------------
    async def accept(self, account_id: int, plan: SendPlan, now: datetime) -> Accepted | None:
        """Store a request durably and debit its points; None if the balance is too low.

        Recipients start WAITING when ``plan.dlvtime`` is after ``now``, else QUEUED.
        """

    # queries and cancel ---------------------------------------------------------------
    async def recipients(self, account_id: int, msgids: Sequence[int]) -> list[RecipientStatus]:
        """Recipients of those of ``msgids`` that belong to the account, in msgid order
        (as listed) then in the order the numbers were given at send time."""

    async def cancel(self, account_id: int, msgid: int, now: datetime) -> Cancelled | None:
        """Move the msgid's WAITING recipients to CANCEL and refund their share of points
        (a ledger row of kind 'refund'); None if the msgid is not the account's."""
