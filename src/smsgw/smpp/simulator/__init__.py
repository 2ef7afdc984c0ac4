"""The built-in SMSC simulator: an SMPP 3.4 server for the default configuration and tests.

- ``server``: ``Simulator`` (asyncio adapter over ``smsgw.smpp.session.Session(role="smsc")``):
  checks binds, answers submit_sm with hex message ids, sends receipts and MOs.
- ``behaviours``: one small class per behaviour (throttle, outcome mix, per-number rules,
  receipt delay and jitter, duplicate and early receipts, dropped connections, stalled reads),
  built from ``SimulatorSettings`` by ``submit_behaviours`` / ``link_behaviours``.
- ``messages``: the receipt and MO deliver_sm PDUs.
- ``control``: ``ControlApp``, the ASGI control endpoint (``POST /mo``, ``GET /stats``).

In a test::

    simulator = Simulator(SimulatorSettings(receipt_delay_s=0, seed=1))
    port = await simulator.start()            # 127.0.0.1, any free port
    ...                                        # bind an ESME to port, submit, get receipts
    await simulator.wait_until(lambda counters: counters.receipts_sent >= 1)
    await simulator.stop()
"""

from smsgw.smpp.simulator.behaviours import Decision, LinkBehaviour, SubmitBehaviour
from smsgw.smpp.simulator.control import ControlApp, control_config
from smsgw.smpp.simulator.server import Counters, Simulator

__all__ = [
    "ControlApp",
    "Counters",
    "Decision",
    "LinkBehaviour",
    "Simulator",
    "SubmitBehaviour",
    "control_config",
]
