"""Submits the SMSC has answered but the store has not recorded yet, and receipts for them.

An SMSC that delivers at once sends the receipt right behind the submit_sm_resp, often in the
same TCP read, so the receipt's handler runs before the dispatcher has recorded the submit.
The store cannot match such a receipt: it is held, and the submit's own commit applies it,
which makes that commit long (in a scheduled burst on SQLite, up to 200 ms holding the
file's write lock while the API waited for it). Instead, the ESME names every accepted submit
the moment its response is read (``answered``); a receipt for one of those waits until the
dispatcher's commit recorded it (``recorded``) and is then applied on its own. The SMSC's
deliver_sm is acknowledged that much later, and still only after the receipt is stored.

Nothing depends on this for correctness: a receipt that waited ``wait_s`` (the record failed,
or the process is stopping) goes to the store as before, and is held if still unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

# Far longer than a group commit takes under load: a bound for the unexpected, not a pace.
WAIT_S = 5.0


class Unrecorded:
    def __init__(self, wait_s: float = WAIT_S) -> None:
        self._wait_s = wait_s
        self._pending: dict[tuple[str, str], asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def answered(self, connector: str, message_id: str) -> None:
        """The SMSC accepted a submit through ``connector`` and named it ``message_id``."""
        key = (connector, message_id)
        if key not in self._pending:
            self._pending[key] = asyncio.get_running_loop().create_future()

    def recorded(self, connector: str, message_ids: Iterable[str]) -> None:
        """The store committed these submits (or gave up on them): release their receipts."""
        for message_id in message_ids:
            future = self._pending.pop((connector, message_id), None)
            if future is not None and not future.done():
                future.set_result(None)

    async def settled(self, connector: str, receipts: Iterable[Iterable[str]]) -> None:
        """Return once the submits these receipts name (each in any of its id forms) are
        recorded, or ``wait_s`` passed. Nothing to wait for (the usual case) awaits nothing."""
        waiting = {
            future
            for forms in receipts
            for form in forms
            if (future := self._pending.get((connector, form))) is not None
        }
        if waiting:
            # asyncio.wait leaves the shared futures alone when the wait ends, so no shield
            # is needed (wait_for around a shield cost a third more per receipt).
            await asyncio.wait(waiting, timeout=self._wait_s)
