"""The crash test's orchestration: a simulator and a callback receiver that outlive the
gateway, the gateway SIGKILLed at seeded random moments under a bounded load and restarted on
the same database, then the audit (lost, duplicate submits and callbacks, double charges).

Kill moments are events, not timers: after the n-th accepted request of a run, or after the
n-th callback received in that run (n and the kind drawn from the seed), so they fall while
requests are being accepted, submits are in flight, receipts and callbacks are on their way.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from tests.reliability import audit
from tests.reliability.audit import Key
from tests.reliability.load import LoadGenerator
from tests.reliability.processes import (
    SmsgwProcess,
    clean_environment,
    free_ports,
    run_cli,
    wait_for,
)
from tests.reliability.receiver import CallbackReceiver, serving

USERNAME: Final = "crash"
PASSWORD: Final = "crash-password-1"
INITIAL_POINTS: Final = 1_000_000
WINDOW: Final = 10  # the connector's window: submits awaiting their response at once
CLAIM_LEASE_S: Final = 6.0
CALLBACK_TIMEOUT_S: Final = 3.0
READY_DEADLINE_S: Final = 60.0
TRIGGER_DEADLINE_S: Final = 60.0
SETTLE_DEADLINE_S: Final = 120.0


@dataclass(frozen=True, slots=True)
class CrashPlan:
    backend: str
    database_url: str
    kills: int
    requests_per_run: int
    seed: int
    workdir: Path
    concurrency: int = 4
    separate_engine: bool = False  # engine.separate_process: serve, delivery and callbacks


@dataclass
class KillRecord:
    """What one SIGKILL left in flight (read from the store once the process was dead)."""

    trigger: str
    unrecorded_segments: int
    acknowledged_pending_callbacks: int
    in_flight_submits: set[Key] = field(default_factory=set)
    in_flight_callbacks: set[Key] = field(default_factory=set)
    submitted_before: int = 0
    duplicate_submits: int = 0
    duplicate_callbacks: int = 0

    @property
    def submit_bound(self) -> int:
        return self.unrecorded_segments + WINDOW


@dataclass
class CrashReport:
    backend: str
    kills: list[KillRecord]
    accepted: int = 0
    failed_requests: int = 0
    refused: list[str] = field(default_factory=list)
    orphans: int = 0
    lost: list[str] = field(default_factory=list)
    unacknowledged: list[Key] = field(default_factory=list)
    duplicate_submits: int = 0
    unexplained_submits: list[audit.Occurrence] = field(default_factory=list)
    duplicate_callbacks: int = 0
    unexplained_callbacks: list[audit.Occurrence] = field(default_factory=list)
    double_charges: int = 0
    charge_errors: list[str] = field(default_factory=list)
    settled: bool = True

    def over_bound(self) -> list[str]:
        """Kills whose duplicates exceed what was in flight at them."""
        return [
            f"kill {index + 1}: {kill.duplicate_submits} submits > {kill.submit_bound}"
            f" or {kill.duplicate_callbacks} callbacks > {kill.acknowledged_pending_callbacks}"
            for index, kill in enumerate(self.kills)
            if kill.duplicate_submits > kill.submit_bound
            or kill.duplicate_callbacks > kill.acknowledged_pending_callbacks
        ]


def table(reports: list[CrashReport]) -> str:
    """The summary table, then each kill's in-flight figures and duplicates."""
    head = (
        f"{'backend':<10}{'kills':>6}{'accepted':>10}{'lost':>6}{'dup submits':>13}"
        f"{'dup acked callbacks':>21}{'double charges':>16}{'orphans':>9}"
    )
    lines = [head, "-" * len(head)]
    lines += [
        f"{r.backend:<10}{len(r.kills):>6}{r.accepted:>10}{len(r.lost):>6}"
        f"{r.duplicate_submits:>13}{r.duplicate_callbacks:>21}{r.double_charges:>16}"
        f"{r.orphans:>9}"
        for r in reports
    ]
    for report in reports:
        for index, kill in enumerate(report.kills):
            lines.append(
                f"  {report.backend} kill {index + 1:>2} ({kill.trigger:<12}): in flight"
                f" {kill.unrecorded_segments} unrecorded segments + window {WINDOW},"
                f" {kill.acknowledged_pending_callbacks} acknowledged callbacks unrecorded;"
                f" duplicates {kill.duplicate_submits} submits,"
                f" {kill.duplicate_callbacks} callbacks"
            )
    return "\n".join(lines)


def _simulator_config(plan: CrashPlan) -> str:
    return f"[simulator]\nreceipt_delay_s = 0.1\nseed = {plan.seed}\n"


def _gateway_config(plan: CrashPlan, http_port: int, smpp_port: int) -> str:
    return f"""
[http]
host = "127.0.0.1"
port = {http_port}

[database]
url = "{plan.database_url}"

[webhooks]
allow_private_networks = true
timeout_s = {CALLBACK_TIMEOUT_S}
retry_delays_s = [0.2, 0.5, 1.0]

[engine]
claim_lease_s = {CLAIM_LEASE_S}
separate_process = {str(plan.separate_engine).lower()}

[[connectors]]
name = "smsc"
kind = "smpp"
host = "127.0.0.1"
port = {smpp_port}
system_id = "smsgw"
password = "secret"
window = {WINDOW}
reconnect_max_s = 1
"""


class CrashSession:
    """One backend's run: ``kills`` SIGKILLs, each followed by a restart, then the audit."""

    def __init__(self, plan: CrashPlan, receiver: CallbackReceiver) -> None:
        self.plan = plan
        self.receiver = receiver
        self.rng = random.Random(plan.seed)  # noqa: S311 - a test's seeded choices
        self.env = clean_environment()
        self.http_port, self.smpp_port, self.control_port = free_ports(3)
        plan.workdir.mkdir(parents=True, exist_ok=True)
        self.gateway_config = plan.workdir / "gateway.toml"
        self.gateway_config.write_text(_gateway_config(plan, self.http_port, self.smpp_port))
        simulator_config = plan.workdir / "simulator.toml"
        simulator_config.write_text(_simulator_config(plan))
        self.simulator = SmsgwProcess(
            [
                "--config",
                str(simulator_config),
                "simulator",
                "--port",
                str(self.smpp_port),
                "--control-port",
                str(self.control_port),
            ],
            plan.workdir / "simulator.log",
            self.env,
        )
        self.gateway = SmsgwProcess(
            ["--config", str(self.gateway_config), "serve", "--log-level", "warning"],
            plan.workdir / "gateway.log",
            self.env,
        )
        self.load = LoadGenerator(
            f"http://127.0.0.1:{self.http_port}",
            USERNAME,
            PASSWORD,
            receiver.url,
            random.Random(plan.seed + 1),  # noqa: S311
            concurrency=plan.concurrency,
        )
        self.reader: audit.StoreReader = (
            audit.PostgresReader(plan.database_url)
            if plan.backend == "postgres"
            else audit.SqliteReader(plan.database_url.removeprefix("sqlite:///"))
        )
        self.kills: list[KillRecord] = []
        self._trigger = asyncio.Event()

    async def run(self) -> CrashReport:
        await self.simulator.start()
        try:
            await self._await_simulator()
            await self._prepare_database()
            for run in range(self.plan.kills + 1):
                await self._start_gateway()
                if run < self.plan.kills:
                    await self._load_then_kill(run)
                else:
                    await self.load.send_batch(self.plan.requests_per_run)
            settled = await self._settle()
            return await self._report(settled)
        finally:
            await self.gateway.stop()
            await self.simulator.stop()

    async def _await_simulator(self) -> None:
        async def answers() -> bool:
            return await self._control_get("/stats") is not None

        await wait_for(answers, READY_DEADLINE_S, "the simulator's control endpoint")

    async def _control_get(self, path: str) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(f"http://127.0.0.1:{self.control_port}{path}")
        except httpx.HTTPError:
            return None
        return response if response.status_code == httpx.codes.OK else None

    async def _prepare_database(self) -> None:
        config = ["--config", str(self.gateway_config)]
        await run_cli([*config, "db", "upgrade"], self.env)
        account = ["account", "create", USERNAME, "--password", PASSWORD]
        await run_cli([*config, *account, "--points", str(INITIAL_POINTS)], self.env)

    async def _start_gateway(self) -> None:
        await self.gateway.start()

        async def ready() -> bool:
            if not self.gateway.running:
                raise RuntimeError(f"the gateway died:\n{self.gateway.log_tail()}")
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.get(f"http://127.0.0.1:{self.http_port}/readyz")
            except httpx.HTTPError:
                return False
            return response.status_code == httpx.codes.OK

        await wait_for(ready, READY_DEADLINE_S, "the gateway's /readyz")

    async def _load_then_kill(self, run: int) -> None:
        trigger = self._arm_trigger()
        batch = asyncio.create_task(self.load.send_batch(self.plan.requests_per_run))
        try:
            async with asyncio.timeout(TRIGGER_DEADLINE_S):
                await self._trigger.wait()
        finally:
            self.load.halt()
            await self.gateway.kill()
            self.receiver.run = run + 1
            self.load.on_accept = self.receiver.on_callback = None
            await batch
        self.kills.append(await self._in_flight_at_kill(trigger))

    def _arm_trigger(self) -> str:
        self._trigger.clear()
        target = self.rng.randint(1, self.plan.requests_per_run)
        kind = self.rng.choice(("accept", "callback"))
        count = 0

        def counted() -> None:
            nonlocal count
            count += 1
            if count >= target:
                self._trigger.set()

        if kind == "accept":
            self.load.on_accept = counted
        else:
            self.receiver.on_callback = counted
        return f"{kind} #{target}"

    async def _in_flight_at_kill(self, trigger: str) -> KillRecord:
        submits = await audit.in_flight_submits(self.reader)
        pending = await audit.pending_callbacks(self.reader)
        acknowledged = pending & self.receiver.acknowledged
        submitted = await self._submitted()
        return KillRecord(
            trigger,
            sum(submits.values()),
            len(acknowledged),
            in_flight_submits=set(submits),
            in_flight_callbacks=acknowledged,
            submitted_before=len(submitted),
        )

    async def _submitted(self) -> list[audit.Submit]:
        response = await self._control_get("/submitted")
        if response is None:
            raise RuntimeError("the simulator does not answer GET /submitted")
        return [audit.parse_submit(entry) for entry in response.json()]

    async def _settle(self) -> bool:
        """Wait until every stored recipient is final and every callback acknowledged."""

        async def settled() -> bool:
            rows = await audit.recipients(self.reader)
            if not all(row.state.final for row in rows.values()):
                return False
            if (await audit.callback_states(self.reader))["pending"]:
                return False
            return set(rows) <= self.receiver.acknowledged

        try:
            await wait_for(settled, SETTLE_DEADLINE_S, "every recipient final, callbacks acked")
        except TimeoutError:
            return False
        return True

    async def _report(self, settled: bool) -> CrashReport:
        report = CrashReport(
            self.plan.backend,
            self.kills,
            accepted=len(self.load.accepted),
            failed_requests=self.load.failed,
            refused=self.load.refused,
            settled=settled,
        )
        rows = await audit.recipients(self.reader)
        requests = await self.reader.fetch(audit.REQUESTS)
        self._check_lost(report, rows)
        await self._check_charges(report, {int(m): int(p) for m, _, p in requests})
        self._check_submits(report, await self._submitted(), audit.msgids_by_token(requests))
        self._check_callbacks(report)
        return report

    def _check_lost(self, report: CrashReport, rows: dict[Key, audit.RecipientRow]) -> None:
        for request in self.load.accepted.values():
            for number in request.numbers:
                row = rows.get((request.msgid, number))
                if row is None or not row.state.final:
                    state = "missing" if row is None else row.state.value
                    report.lost.append(f"{request.msgid}/{number}: {state}")
        report.unacknowledged = sorted(set(rows) - self.receiver.acknowledged)

    async def _check_charges(self, report: CrashReport, points_of: dict[int, int]) -> None:
        ledger = await self.reader.fetch(audit.LEDGER)
        (balance,) = (await self.reader.fetch(audit.BALANCES))[0]
        sums: Counter[str] = Counter()
        debits: Counter[int] = Counter()
        debited: Counter[int] = Counter()
        for kind, delta, msgid in ledger:
            sums[str(kind)] += int(delta)
            if kind == "debit":
                debits[int(msgid)] += 1
                debited[int(msgid)] -= int(delta)
        accepted = self.load.accepted
        orphans = set(points_of) - set(accepted)
        report.orphans = len(orphans)
        owed = sum(request.points for request in accepted.values())
        owed += sum(points_of[msgid] for msgid in orphans)
        expected = sums["topup"] - owed + sums["refund"]
        report.double_charges = expected - int(balance)
        report.charge_errors += [
            f"msgid {msgid}: {debits[msgid]} debits of {debited[msgid]} for {points}"
            for msgid, points in points_of.items()
            if debits[msgid] != 1 or debited[msgid] != points
        ]
        report.charge_errors += [
            f"msgid {msgid}: answered point={request.points}, stored {points_of.get(msgid)}"
            for msgid, request in accepted.items()
            if points_of.get(msgid) != request.points
        ]
        if sum(sums.values()) != int(balance):
            report.charge_errors.append(f"ledger sum {sum(sums.values())} != balance {balance}")
        if sums["topup"] != INITIAL_POINTS:
            report.charge_errors.append(f"top-ups {sums['topup']} != {INITIAL_POINTS}")

    def _check_submits(
        self, report: CrashReport, submits: list[audit.Submit], tokens: dict[str, int]
    ) -> None:
        starts = [kill.submitted_before for kill in self.kills]
        repeats = audit.submit_repeats(submits, starts, tokens)
        attribution = audit.attribute(repeats, [k.in_flight_submits for k in self.kills])
        report.duplicate_submits = len(repeats)
        report.unexplained_submits = attribution.unexplained
        for kill, count in zip(self.kills, attribution.per_kill, strict=True):
            kill.duplicate_submits = count

    def _check_callbacks(self, report: CrashReport) -> None:
        repeats = [audit.Occurrence(r.key, r.run) for r in self.receiver.repeats]
        attribution = audit.attribute(repeats, [k.in_flight_callbacks for k in self.kills])
        report.duplicate_callbacks = len(repeats)
        report.unexplained_callbacks = attribution.unexplained
        for kill, count in zip(self.kills, attribution.per_kill, strict=True):
            kill.duplicate_callbacks = count


async def run_crash(plan: CrashPlan) -> CrashReport:
    """The whole crash run of one backend, with a callback receiver served for its duration."""
    async with serving(CallbackReceiver()) as receiver:
        return await CrashSession(plan, receiver).run()
