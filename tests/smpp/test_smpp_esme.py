from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from tests.smpp.fakesmsc import FakeSmsc

from smsgw.config import ConnectorSettings
from smsgw.smpp import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CommandId,
    CommandStatus,
    DataSm,
    DeliverSm,
    SubmitSm,
    Tlv,
    encode,
)
from smsgw.smpp.esme import DeliverHandler, Esme, Refused, Submitted, one_at_a_time
from smsgw.smpp.throttle import TokenBucket

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

S = CommandStatus
PASSWORD = "s3cr3t"


class Handler:
    """A deliver handler that records what it got, optionally waits for a gate, or fails.
    ``calls`` keeps how many PDUs each call brought."""

    def __init__(self, status: CommandStatus = S.ESME_ROK, *, fail: bool = False) -> None:
        self.status = status
        self.fail = fail
        self.received: list[DeliverSm | DataSm] = []
        self.calls: list[int] = []
        self.called = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def __call__(self, pdus: Sequence[DeliverSm | DataSm]) -> list[CommandStatus]:
        self.received += pdus
        self.calls.append(len(pdus))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("the store is down")
        return [self.status] * len(pdus)


def settings_for(smsc: FakeSmsc, **overrides: Any) -> ConnectorSettings:
    server = smsc._server
    assert server is not None
    base = ConnectorSettings(
        name="carrier",
        kind="smpp",
        port=int(server.sockets[0].getsockname()[1]),
        system_id="gw",
        password=PASSWORD,
        tps=1_000_000.0,
        window=10,
        response_timeout_s=5.0,
        reconnect_max_s=0.05,
        throttle_backoff_s=0.01,
    )
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def running(
    settings: ConnectorSettings, handler: DeliverHandler | None = None, **options: Any
) -> AsyncIterator[Esme]:
    esme = Esme(settings, handler or Handler(), reconnect_backoff=(0.01,), **options)
    await esme.start()
    try:
        assert await esme.wait_bound(5.0)
        yield esme
    finally:
        await esme.stop()


def message(text: str = "hello", **fields: Any) -> SubmitSm:
    return SubmitSm(destination_addr="886912345678", short_message=text.encode(), **fields)


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until the ESME reached a state (no timed sleep; bounded by a deadline)."""
    async with asyncio.timeout(5.0):
        # The ESME exposes no event for "all window slots written"; sleep(0) only yields.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0)


async def test_bind_transceiver_and_submit(smsc: FakeSmsc) -> None:
    """The ESME binds as a transceiver with its credentials and gets the SMSC's message id."""
    async with running(settings_for(smsc)) as esme:
        assert esme.bound
        outcome = await esme.submit(message())
    assert outcome == Submitted("1")
    (bind,) = smsc.binds
    assert isinstance(bind, BindTransceiver)
    assert (bind.system_id, bind.password) == ("gw", PASSWORD)
    assert smsc.submitted[0].short_message == b"hello"


async def test_window_is_never_exceeded(smsc: FakeSmsc) -> None:
    """With responses held, at most ``window`` submits are ever unanswered; the rest wait."""
    smsc.hold_responses = True
    async with running(settings_for(smsc, window=5)) as esme:
        tasks = [asyncio.create_task(esme.submit(message(str(n)))) for n in range(40)]
        while len(smsc.submitted) < 40 or smsc.held:
            await smsc.wait_until(lambda: len(smsc.held) == 5 or len(smsc.submitted) == 40)
            assert esme.window_in_use <= 5
            smsc.release(2)
        outcomes = await asyncio.gather(*tasks)
    assert all(isinstance(outcome, Submitted) for outcome in outcomes)
    assert smsc.max_outstanding == 5
    assert len(smsc.submitted) == 40


async def test_the_token_bucket_is_consulted_for_every_submit(smsc: FakeSmsc) -> None:
    """Each submit_sm written first reserves a token from the rate bucket."""

    class CountingBucket(TokenBucket):
        reservations = 0

        def reserve(self, now: float) -> float:
            CountingBucket.reservations += 1
            return super().reserve(now)

    async with running(settings_for(smsc)) as esme:
        esme._bucket = CountingBucket(1_000_000.0)
        await asyncio.gather(*(esme.submit(message()) for _ in range(3)))
    assert CountingBucket.reservations == 3


@pytest.mark.parametrize("status", [S.ESME_RTHROTTLED, S.ESME_RMSGQFUL])
async def test_throttled_submit_is_resent_and_accepted(smsc: FakeSmsc, status: S) -> None:
    """A throttling status pauses, then the same PDU is resent with a new sequence number."""
    smsc.submit_statuses.extend([status, status])
    async with running(settings_for(smsc)) as esme:
        outcome = await esme.submit(message("again"))
    assert isinstance(outcome, Submitted)
    assert [pdu.short_message for pdu in smsc.submitted] == [b"again"] * 3
    assert len({pdu.sequence_number for pdu in smsc.submitted}) == 3


async def test_throttled_too_often_is_a_temporary_refusal(smsc: FakeSmsc) -> None:
    """After a few resends still throttled, the submit is refused as temporary."""
    smsc.submit_statuses.extend([S.ESME_RTHROTTLED] * 10)
    async with running(settings_for(smsc)) as esme:
        outcome = await esme.submit(message())
    assert isinstance(outcome, Refused)
    assert (outcome.status, outcome.temporary) == (S.ESME_RTHROTTLED, True)
    assert len(smsc.submitted) == 4


@pytest.mark.parametrize(
    ("status", "temporary"),
    [(S.ESME_RINVDSTADR, False), (S.ESME_RINVDCS, False), (S.ESME_RSYSERR, True)],
)
async def test_other_statuses_are_classified(smsc: FakeSmsc, status: S, temporary: bool) -> None:
    """Any other refusal is returned once, temporary or permanent as its status says."""
    smsc.submit_statuses.append(status)
    async with running(settings_for(smsc)) as esme:
        outcome = await esme.submit(message())
    assert isinstance(outcome, Refused)
    assert (outcome.status, outcome.temporary) == (status, temporary)
    assert len(smsc.submitted) == 1


async def test_a_pdu_the_session_cannot_encode_is_a_permanent_refusal(smsc: FakeSmsc) -> None:
    """A field too long for SMPP is refused permanently without being sent."""
    async with running(settings_for(smsc)) as esme:
        outcome = await esme.submit(message(source_addr="1" * 30))
    assert isinstance(outcome, Refused)
    assert not outcome.temporary
    assert smsc.submitted == []


async def test_response_timeout_refuses_and_reconnects(smsc: FakeSmsc) -> None:
    """An unanswered submit is a temporary 'response timeout'; the ESME reconnects after."""
    smsc.hold_responses = True
    async with running(settings_for(smsc, response_timeout_s=0.2)) as esme:
        outcome = await esme.submit(message())
        assert outcome == Refused(S.ESME_RSYSERR, temporary=True, reason="response timeout")
        await smsc.wait_until(lambda: len(smsc.binds) == 2)
        smsc.hold_responses = False
        assert await esme.wait_bound(5.0)
        assert isinstance(await esme.submit(message()), Submitted)


async def test_dropped_connection_refuses_in_flight_submits_then_recovers(
    smsc: FakeSmsc,
) -> None:
    """Submits in flight when the link drops are temporary refusals; then submits work again."""
    smsc.hold_responses = True
    async with running(settings_for(smsc)) as esme:
        tasks = [asyncio.create_task(esme.submit(message())) for _ in range(3)]
        await smsc.wait_until(lambda: len(smsc.held) == 3)
        smsc.drop()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), 5.0)
        assert outcomes == [Refused(S.ESME_RSYSERR, temporary=True, reason="connection lost")] * 3
        smsc.hold_responses = False
        await smsc.wait_until(lambda: len(smsc.binds) == 2)
        assert await esme.wait_bound(5.0)
        assert isinstance(await esme.submit(message()), Submitted)


async def test_submit_without_a_bind_is_refused_after_the_bind_wait() -> None:
    """With no SMSC reachable, submit gives up after bind_wait_s: temporary 'not bound'."""
    fake = FakeSmsc()
    await fake.start()
    settings = settings_for(fake)
    await fake.stop()
    esme = Esme(settings, Handler(), bind_wait_s=0.05, reconnect_backoff=(0.01,))
    await esme.start()
    try:
        outcome = await esme.submit(message())
    finally:
        await esme.stop()
    assert outcome == Refused(S.ESME_RSYSERR, temporary=True, reason="not bound")
    assert not esme.bound


async def test_enquire_link_is_sent_when_idle(smsc: FakeSmsc) -> None:
    """An idle bound link sends enquire_link every enquire_link_s and stays bound."""
    async with running(settings_for(smsc, enquire_link_s=0.05)) as esme:
        await smsc.wait_until(lambda: smsc.seen[CommandId.ENQUIRE_LINK] >= 2)
        assert esme.bound
        assert len(smsc.binds) == 1


async def test_unanswered_enquire_link_closes_and_reconnects(smsc: FakeSmsc) -> None:
    """When the SMSC stops answering keepalives the ESME drops the link and binds again."""
    settings = settings_for(smsc, enquire_link_s=0.05, response_timeout_s=0.1)
    async with running(settings) as esme:
        smsc.stall()
        await smsc.wait_until(lambda: len(smsc.connections) >= 2)
        smsc.resume()
        await smsc.wait_until(lambda: len(smsc.binds) >= 2)
        assert await esme.wait_bound(5.0)
        assert isinstance(await esme.submit(message()), Submitted)


async def test_deliver_sm_is_acked_only_after_the_handler_returns(smsc: FakeSmsc) -> None:
    """The deliver_sm_resp leaves only once the handler returned, with the handler's status."""
    handler = Handler(S.ESME_RX_P_APPN)
    handler.gate = asyncio.Event()
    async with running(settings_for(smsc), handler):
        response = smsc.send_deliver(DeliverSm(source_addr="0912345678", short_message=b"hi"))
        await asyncio.wait_for(handler.called.wait(), 5.0)
        await smsc.ping()
        assert not response.done()
        handler.gate.set()
        assert (await asyncio.wait_for(response, 5.0)).command_status == S.ESME_RX_P_APPN
    (received,) = handler.received
    assert isinstance(received, DeliverSm)
    assert received.short_message == b"hi"


async def test_deliver_sms_read_together_are_handled_in_one_call(smsc: FakeSmsc) -> None:
    """Three deliver_sm in one write reach the handler in one call; each response carries
    the status the handler gave its own PDU."""
    statuses = [S.ESME_ROK, S.ESME_RX_P_APPN, S.ESME_RX_T_APPN]
    received: list[list[bytes]] = []

    async def handler(pdus: Sequence[DeliverSm | DataSm]) -> list[CommandStatus]:
        received.append([pdu.short_message for pdu in pdus if isinstance(pdu, DeliverSm)])
        return statuses[: len(pdus)]

    async with running(settings_for(smsc), handler):
        responses = smsc.send_delivers([DeliverSm(short_message=b"%d" % n) for n in range(3)])
        answered = [await asyncio.wait_for(response, 5.0) for response in responses]
    assert received == [[b"0", b"1", b"2"]]
    assert [response.command_status for response in answered] == statuses


async def test_one_at_a_time_answers_a_failing_pdu_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The adapter for one-PDU handlers: a PDU whose handling raises gets ESME_RX_T_APPN,
    the others the status their handling returned."""

    async def handle(pdu: DeliverSm | DataSm) -> CommandStatus:
        if isinstance(pdu, DeliverSm) and pdu.short_message == b"bad":
            raise RuntimeError("cannot store this one")
        return S.ESME_ROK

    pdus = [DeliverSm(short_message=body) for body in (b"ok", b"bad", b"ok")]
    assert await one_at_a_time(handle)(pdus) == [S.ESME_ROK, S.ESME_RX_T_APPN, S.ESME_ROK]
    assert await one_at_a_time(handle)(pdus[:1]) == [S.ESME_ROK]
    assert "deliver handler failed" in caplog.text


async def test_a_failing_handler_is_answered_rx_t_appn(
    smsc: FakeSmsc, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises gets ESME_RX_T_APPN (the SMSC redelivers) and is logged."""
    async with running(settings_for(smsc), Handler(fail=True)):
        status = await smsc.deliver(DeliverSm(short_message=b"x"))
    assert status == S.ESME_RX_T_APPN
    assert "deliver handler failed" in caplog.text


async def test_transmitter_receiver_pair(smsc: FakeSmsc) -> None:
    """bind='transmitter+receiver' binds twice; submits go out, deliveries come in."""
    handler = Handler()
    async with running(settings_for(smsc, bind="transmitter+receiver"), handler) as esme:
        assert {type(bind) for bind in smsc.binds} == {BindTransmitter, BindReceiver}
        assert isinstance(await esme.submit(message()), Submitted)
        assert await smsc.deliver(DeliverSm(short_message=b"mo")) == S.ESME_ROK
    assert [pdu.short_message for pdu in handler.received if isinstance(pdu, DeliverSm)] == [b"mo"]
    transmitter = next(c for c in smsc.connections if c.bind is BindTransmitter)
    assert smsc.submitted[0] is not None
    assert transmitter.session.state.name in {"CLOSED", "UNBOUND"}


async def test_a_stalled_peer_keeps_memory_bounded_and_the_stream_valid(smsc: FakeSmsc) -> None:
    """2,000 large submits to a peer that stops reading: buffers stay within the window, and
    every PDU the peer decodes after resuming is whole and valid."""
    window, total = 1000, 2000
    payload = bytes(range(256)) * 16
    pdu = message(tlvs=(Tlv.message_payload(payload),))
    pdu_size = len(encode(pdu))
    async with running(settings_for(smsc, window=window)) as esme:
        smsc.stall()
        tasks = [asyncio.create_task(esme.submit(pdu)) for _ in range(total)]
        await until(lambda: esme.window_in_use == window)
        connection = esme._links[0].connection
        assert connection is not None
        buffered = connection._writer.transport.get_write_buffer_size()
        assert buffered <= window * pdu_size
        assert esme.window_in_use == window
        smsc.resume()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), 10.0)
    assert all(isinstance(outcome, Submitted) for outcome in outcomes)
    assert smsc.invalid == 0
    assert smsc.seen[CommandId.SUBMIT_SM] == total
    assert all(item.message_payload == payload for item in smsc.submitted)
    assert smsc.max_outstanding <= window


async def test_graceful_stop_unbinds_and_refuses_new_submits(smsc: FakeSmsc) -> None:
    """stop() sends unbind, waits for its answer, and later submits are refused."""
    esme = Esme(settings_for(smsc), Handler())
    await esme.start()
    assert await esme.wait_bound(5.0)
    await esme.stop()
    assert smsc.seen[CommandId.UNBIND] == 1
    assert smsc.responses[CommandId.UNBIND] == 0
    assert not esme.bound
    outcome = await esme.submit(message())
    assert outcome == Refused(S.ESME_RSYSERR, temporary=True, reason="stopping")


async def test_stop_waits_for_outstanding_submits(smsc: FakeSmsc) -> None:
    """A submit in flight when stop() begins still gets its answer before the unbind."""
    smsc.hold_responses = True
    esme = Esme(settings_for(smsc), Handler())
    await esme.start()
    assert await esme.wait_bound(5.0)
    submit = asyncio.create_task(esme.submit(message()))
    await smsc.wait_until(lambda: len(smsc.held) == 1)
    stopping = asyncio.create_task(esme.stop())
    await smsc.ping()
    smsc.release()
    assert isinstance(await asyncio.wait_for(submit, 5.0), Submitted)
    await asyncio.wait_for(stopping, 5.0)
    assert smsc.seen[CommandId.UNBIND] == 1


async def test_an_unbind_from_the_smsc_is_answered_and_the_esme_binds_again(
    smsc: FakeSmsc,
) -> None:
    """The SMSC's unbind gets unbind_resp, then the ESME reconnects and binds again."""
    async with running(settings_for(smsc)) as esme:
        smsc.unbind()
        await smsc.wait_until(lambda: len(smsc.binds) == 2)
        assert smsc.seen[CommandId.UNBIND_RESP] == 1
        assert await esme.wait_bound(5.0)
        assert isinstance(await esme.submit(message()), Submitted)


async def test_refused_credentials_are_logged_without_the_password_and_retried(
    smsc: FakeSmsc, caplog: pytest.LogCaptureFixture
) -> None:
    """A bind refused with ESME_RINVPASWD is logged (never the password) and retried."""
    smsc.bind_statuses.append(S.ESME_RINVPASWD)
    caplog.set_level(logging.INFO, logger="smsgw.smpp.esme")
    async with running(settings_for(smsc)) as esme:
        assert len(smsc.binds) == 2
        assert esme.bound
    assert "ESME_RINVPASWD" in caplog.text
    assert "'gw'" in caplog.text
    assert PASSWORD not in caplog.text
