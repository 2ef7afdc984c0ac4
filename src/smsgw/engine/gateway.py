"""The use cases of the smsgo API: one method each, called by every entry point.

The HTTP adapter parses and renders; everything else (authentication, validation, pricing,
storing, scoping to the caller's account) happens here, in the order PROTOCOL.md section 2
fixes for a request with several faults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from smsgw.domain.pricing import Rates
from smsgw.domain.query import parse_msgid, parse_msgid_list, parse_number_filter
from smsgw.domain.send import plan_send
from smsgw.engine.metrics import Metrics
from smsgw.errors import (
    AccountChangedError,
    CgiError,
    MsisdnAmountError,
    PointsError,
    SendFailError,
    SmsgoError,
    StoreError,
)

if TYPE_CHECKING:
    from smsgw.config import Settings
    from smsgw.domain.model import Accepted, Account, Cancelled, RecipientStatus, SendPlan
    from smsgw.engine.auth import Authenticator
    from smsgw.store.port import Store

Clock = Callable[[], datetime]

# Accepts tried for one sendsms whose account keeps changing under it (then -10).
ACCEPT_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the credentials as given and the client's address."""

    username: str | None
    secret: str | None
    address: str | None

    def __repr__(self) -> str:
        return f"Caller(username={self.username!r}, address={self.address!r})"

    @classmethod
    def from_params(cls, params: Mapping[str, str], address: str | None) -> Caller:
        return cls(params.get("username"), params.get("password"), address)


@dataclass(frozen=True, slots=True)
class Lookup:
    """One queried (msgid, number) pair and what was found: None means NOTFOUND."""

    msgid: int
    number: str
    status: RecipientStatus | None


class Gateway:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        authenticator: Authenticator,
        clock: Clock,
        *,
        metrics: Metrics | None = None,
        on_accept: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._auth = authenticator
        self._clock = clock
        self._rates = Rates(settings.rates)
        self._metrics = metrics
        self._on_accept = on_accept

    async def _authenticate(self, caller: Caller) -> Account:
        return await self._auth.authenticate(caller.username, caller.secret, caller.address)

    async def send(self, caller: Caller, params: Mapping[str, str]) -> Accepted:
        """Validate, price and durably accept a sendsms request (statuscode 0 after commit)."""
        try:
            accepted, recipients = await self._send(caller, params)
        except SmsgoError as error:
            if self._metrics is not None:
                self._metrics.rejected.labels(str(error.code)).inc()
            raise
        if self._metrics is not None:
            self._metrics.accepted.inc()
            self._metrics.accepted_recipients.inc(recipients)
        if self._on_accept is not None:
            self._on_accept()
        return accepted

    async def _send(self, caller: Caller, params: Mapping[str, str]) -> tuple[Accepted, int]:
        # A remembered copy of the account may open the request (no store read); the store
        # then accepts only if the account is still as seen, otherwise it is read again.
        account = await self._auth.authenticate(
            caller.username, caller.secret, caller.address, remembered=True
        )
        now = self._clock()
        plan = plan_send(
            params,
            self._rates,
            now,
            allow_private=self._settings.webhooks.allow_private_networks,
            routable=lambda number: self._settings.route_for(number) is not None,
        )
        return await self._accept(caller, account, plan, now), len(plan.recipients)

    async def _accept(
        self, caller: Caller, account: Account, plan: SendPlan, now: datetime
    ) -> Accepted:
        """Accept on the account as authenticated; one that changed since is read again
        (it may no longer open the request), up to ``ACCEPT_ATTEMPTS`` accepts in all."""
        for _ in range(ACCEPT_ATTEMPTS):
            if account.balance < plan.points:
                # A remembered copy's balance may predate a topup: only a fresh one refuses.
                account = await self._authenticate(caller)
                if account.balance < plan.points:
                    raise PointsError(f"{plan.points} needed")
            try:
                accepted = await self._store.accept(account.id, plan, now, seen=account.access)
            except AccountChangedError:
                account = await self._authenticate(caller)
                continue
            except StoreError:
                raise SendFailError from None
            if accepted is None:
                raise PointsError(f"{plan.points} needed")
            return accepted
        raise SendFailError("the account changed during every attempt")

    async def query(self, caller: Caller, params: Mapping[str, str]) -> Lookup:
        """query.asp: the state of one recipient of one of the caller's msgids."""
        account = await self._authenticate(caller)
        wanted = parse_number_filter(params.get("dstaddr"))
        if not wanted:
            raise MsisdnAmountError
        if len(wanted) > 1:
            raise MsisdnAmountError("one number per query")
        number = wanted[0]
        msgid = parse_msgid(params.get("msgid"))
        found = await self._store.recipients(account.id, [msgid])
        status = next((row for row in found if row.number == number), None)
        return Lookup(msgid, number, status)

    async def query_bulk(self, caller: Caller, params: Mapping[str, str]) -> list[Lookup]:
        """queryBulk.asp: every (listed) recipient of up to 100 of the caller's msgids."""
        account = await self._authenticate(caller)
        msgids = parse_msgid_list(params.get("msgid"))
        wanted = parse_number_filter(params.get("dstaddr"))
        found = await self._store.recipients(account.id, msgids)
        by_msgid: dict[int, list[RecipientStatus]] = {}
        for row in found:
            if wanted is None or row.number in wanted:
                by_msgid.setdefault(row.msgid, []).append(row)
        lookups: list[Lookup] = []
        for msgid in msgids:
            rows = by_msgid.get(msgid)
            if rows:
                lookups.extend(Lookup(msgid, row.number, row) for row in rows)
            else:
                lookups.append(Lookup(msgid, "", None))
        return lookups

    async def balance(self, caller: Caller) -> int:
        """query_point.asp: the caller's balance in points."""
        account = await self._authenticate(caller)
        return account.balance

    async def cancel(self, caller: Caller, params: Mapping[str, str]) -> Cancelled:
        """sendsms_cancel.asp: cancel every WAITING recipient of a msgid and refund them."""
        account = await self._authenticate(caller)
        msgid = parse_msgid(params.get("msgid"))
        try:
            cancelled = await self._store.cancel(account.id, msgid, self._clock())
        except StoreError:
            raise SendFailError from None
        if cancelled is None:
            raise CgiError("unknown msgid")
        if cancelled.recipients == 0:
            raise CgiError("nothing left to cancel")
        return cancelled
