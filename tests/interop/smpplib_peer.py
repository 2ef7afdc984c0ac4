"""An independent blocking ESME (PyPI ``smpplib``), driven from asyncio through a thread.

Every method blocks on the socket (timeout ``PEER_DEADLINE_S``), so tests call them with
``asyncio.to_thread`` while our simulator runs on the event loop.
"""

from __future__ import annotations

from typing import Any

import smpplib.client  # type: ignore[import-untyped]
import smpplib.consts  # type: ignore[import-untyped]
import smpplib.gsm  # type: ignore[import-untyped]

from tests.interop.conftest import PEER_DEADLINE_S

DATA_CODING_UCS2 = smpplib.consts.SMPP_ENCODING_ISO10646
DATA_CODING_FLASH = 0x10


def encoded_parts(text: str, data_coding: int = 0) -> tuple[list[bytes], int, int]:
    """smpplib's own encoding of ``text``: (short_message of each part, data_coding, esm_class)."""
    parts, coding, esm_class = smpplib.gsm.make_parts(text, encoding=data_coding)
    return list(parts), int(coding), int(esm_class)


class SmpplibEsme:
    """A transceiver that records what it receives: submit_sm_resp and deliver_sm PDUs."""

    def __init__(self, port: int) -> None:
        self.client = smpplib.client.Client(
            "127.0.0.1", port, timeout=PEER_DEADLINE_S, allow_unknown_opt_params=True
        )
        self.responses: list[Any] = []
        self.deliveries: list[Any] = []
        self.client.set_message_sent_handler(self._sent)
        self.client.set_message_received_handler(self._delivered)

    def _sent(self, pdu: Any) -> None:
        self.responses.append(pdu)

    def _delivered(self, pdu: Any) -> None:
        self.deliveries.append(pdu)

    def bind(self, system_id: str, password: str) -> int:
        """Connect and bind as transceiver; the bind_transceiver_resp status."""
        self.client.connect()
        response = self.client.bind_transceiver(system_id=system_id, password=password)
        return int(response.status)

    def submit(self, short_message: bytes, **fields: Any) -> int:
        """Send one submit_sm; its sequence number."""
        pdu = self.client.send_message(
            source_addr_ton=5,
            source_addr="smsgw",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="886912345678",
            registered_delivery=1,
            short_message=short_message,
            **fields,
        )
        return int(pdu.sequence)

    def read_until(self, responses: int = 0, deliveries: int = 0) -> None:
        """Read (answering deliver_sm) until that many responses and deliveries came."""
        while len(self.responses) < responses or len(self.deliveries) < deliveries:
            self.client.read_once(auto_send_enquire_link=False)

    def close(self) -> None:
        """Unbind if bound (skipping PDUs still in flight), then close the socket."""
        if self.client.state == smpplib.consts.SMPP_CLIENT_STATE_CLOSED:
            return
        if self.client.state != smpplib.consts.SMPP_CLIENT_STATE_OPEN:
            response = self.client.unbind()
            while response.command != "unbind_resp":
                response = self.client.read_pdu()
        self.client.disconnect()
