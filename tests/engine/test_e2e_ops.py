"""End to end: /metrics and /readyz after a run, and a graceful shutdown that loses nothing."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from smsgw.domain.model import State
from smsgw.engine.testing import FakeClock
from smsgw.server import utc_now
from tests.engine.conftest import Gateway, GatewayFactory
from tests.engine.test_e2e import numbers

SLOW_CONNECTOR = """
[[connectors]]
name = "sim"
kind = "simulator"
tps = 100
window = 4
"""
LEASE_S = 121  # just past the dispatcher's lease of 120 s


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_a_delivery(make_gateway: GatewayFactory) -> None:
    """/metrics counts the accept, submit, receipt and callback, and shows the connector bound."""
    gateway = await make_gateway()
    receiver = gateway.receiver
    sent = await gateway.send(dstaddr="0912345678", smbody="hi", response=f"{receiver.base}/d")
    await gateway.until_all_final(sent["msgid"])

    async def callback_sent() -> bool:
        return (await gateway.store.callback_counts()).get("sent") == 1

    await gateway.until(callback_sent)
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    found = samples(response.text)
    assert value(found, "smsgw_accepted_requests_total") == 1
    assert value(found, "smsgw_accepted_recipients_total") == 1
    assert value(found, "smsgw_submit_results_total", connector="sim", result="submitted") == 1
    receipts = sum(
        value(found, "smsgw_receipts_total", state="DELIVRD", matched=matched)
        for matched in ("true", "false")
    )
    assert receipts == 1
    assert value(found, "smsgw_callbacks_total", kind="dlr", outcome="sent") == 1
    assert value(found, "smsgw_connector_bound", connector="sim") == 1


async def test_ready_when_bound_and_store_reachable(make_gateway: GatewayFactory) -> None:
    """/readyz answers 200 once the connector is bound and the store answers."""
    gateway = await make_gateway()
    assert (await gateway.client.get("/readyz")).status_code == 200
    assert (await gateway.client.get("/healthz")).status_code == 200


async def finish_after_restart(
    gateway: Gateway, clock: FakeClock, msgids: list[str]
) -> dict[str, State]:
    """Recover what the stopped process left: resubmit after the lease, then time out receipts
    the stopped simulator never sent."""
    engine = gateway.engine
    assert engine.dispatcher is not None
    clock.advance(LEASE_S)
    await engine.dispatcher.dispatch_due()
    await engine.dispatcher.drain()
    await gateway.until_simulator(lambda c: c.receipts_sent == c.submits - c.submits_refused)
    counted = gateway.simulator.receipts_sent

    async def receipts_stored() -> bool:
        registry = gateway.runtime.metrics.registry
        stored = sum(
            registry.get_sample_value("smsgw_receipts_total", {"state": s.value, "matched": m}) or 0
            for s in State
            for m in ("true", "false")
        )
        return stored >= counted

    await gateway.until(receipts_stored)
    clock.advance(engine.settings.engine.receipt_timeout_s + 1)
    await engine.housekeeping()
    return {
        number: state for msgid in msgids for number, state in (await gateway.states(msgid)).items()
    }


async def test_graceful_shutdown_loses_nothing(make_gateway: GatewayFactory) -> None:
    """Stopping with submits in flight loses nothing: after a restart every recipient is final."""
    clock = FakeClock(utc_now())
    first = await make_gateway(SLOW_CONNECTOR, clock)
    wanted = numbers(100)
    sent = [
        await first.send(dstaddr=",".join(wanted[:50]), smbody="hi"),
        await first.send(dstaddr=",".join(wanted[50:]), smbody="hi"),
    ]
    await first.until_simulator(lambda counters: counters.submits >= 5)
    await first.stop()
    second = await make_gateway(SLOW_CONNECTOR, clock)
    states = await finish_after_restart(second, clock, [s["msgid"] for s in sent])
    assert len(states) == 100
    assert all(state.final for state in states.values()), states
    assert State.DELIVRD in states.values()
