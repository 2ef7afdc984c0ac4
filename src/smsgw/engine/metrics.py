"""Prometheus metrics of one process (prometheus-client, a registry per process or test).

Counters are bumped by the engine and API as events happen; queue depths are refreshed by the
engine's housekeeping loop (a store query every few seconds, never per scrape); connector
bind state and window use are read live at scrape time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from smsgw.domain.model import State

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Watched(Protocol):
    """What the metrics read of a connector at scrape time."""

    @property
    def bound(self) -> bool: ...

    @property
    def window_in_use(self) -> int: ...


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.accepted = Counter(
            "smsgw_accepted_requests", "sendsms requests accepted (statuscode 0)", registry=r
        )
        self.accepted_recipients = Counter(
            "smsgw_accepted_recipients", "recipients of accepted requests", registry=r
        )
        self.rejected = Counter(
            "smsgw_rejected_requests", "sendsms requests refused", ["statuscode"], registry=r
        )
        self.accept_seconds = Histogram(
            "smsgw_accept_seconds", "sendsms answer time", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.submit_results = Counter(
            "smsgw_submit_results",
            "recipients handed to a connector, by result",
            ["connector", "result"],
            registry=r,
        )
        self.receipts = Counter(
            "smsgw_receipts", "delivery receipts stored", ["state", "matched"], registry=r
        )
        self.callbacks = Counter(
            "smsgw_callbacks", "callback attempts by outcome", ["kind", "outcome"], registry=r
        )
        self.replies = Counter("smsgw_replies", "handset replies stored", ["matched"], registry=r)
        self.recipients = Gauge(
            "smsgw_recipients", "recipients by state (queue depths)", ["state"], registry=r
        )
        self.outbox = Gauge("smsgw_callbacks_outbox", "callbacks by state", ["state"], registry=r)
        self.connector_bound = Gauge(
            "smsgw_connector_bound", "1 when the connector is bound", ["connector"], registry=r
        )
        self.connector_window = Gauge(
            "smsgw_connector_window_in_use",
            "submit_sm awaiting their response",
            ["connector"],
            registry=r,
        )

    def watch_connector(self, name: str, connector: Watched) -> None:
        self.connector_bound.labels(name).set_function(lambda: float(connector.bound))
        self.connector_window.labels(name).set_function(lambda: float(connector.window_in_use))

    def set_depths(self, recipients: Mapping[State, int], outbox: Mapping[str, int]) -> None:
        for state in State:
            self.recipients.labels(state.value).set(recipients.get(state, 0))
        for name, count in outbox.items():
            self.outbox.labels(name).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
