"""The load of bench/e2e.py against a running Kannel (bearerbox + smsbox), for compare_kannel.sh.

Sends ``--messages`` sendsms requests to smsbox (``/cgi-bin/sendsms`` with ``dlr-mask=1`` and
a ``dlr-url`` naming the request), receives Kannel's delivery reports with the same callback
receiver as e2e.py, and prints the same figures; CPU and RSS are those of the processes named
by ``--pids`` (bearerbox and smsbox).

    .venv/bin/python bench/kannel_e2e.py --port 13013 --pids 123,124 [--messages 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import exit_on_sigterm, numbers
from e2e import Load, Options, measure, report

KANNEL_USER, KANNEL_PASSWORD = "bench", "bench"


class KannelLoad(Load):
    """sendsms requests in Kannel's dialect; our msgid is the request's index, 1-based."""

    def _request(self, index: int) -> bytes:
        number = numbers(index, 1)
        # Our receiver wants smsgo's fields; dlr-mask=1 asks for successful deliveries only.
        dlr_url = f"{self.callback_url}?msgid={index + 1}&dstaddr={number}&statusstr=DELIVRD&k=%d"
        target = (
            f"/cgi-bin/sendsms?username={KANNEL_USER}&password={KANNEL_PASSWORD}&from=smsgw"
            f"&to={number}&text=e2e+bench&dlr-mask=1&dlr-url={quote(dlr_url, safe='')}"
        )
        return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    def _record(self, index: int, body: str) -> None:
        if body.startswith("0:"):  # "0: Accepted for delivery"
            self.accepted[index + 1] = time.monotonic()
        else:
            self.rejected += 1


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="smsbox sendsms-port")
    parser.add_argument("--pids", required=True, help="bearerbox,smsbox process ids")
    parser.add_argument("--messages", type=int, default=20_000, help="sendsms requests")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--window", type=int, default=1000, help="as configured in kannel.conf")
    parser.add_argument("--deadline-s", type=float, default=300, help="for the whole run")
    args = parser.parse_args()
    options = Options(
        "kannel", args.messages, 1, args.concurrency, 1, args.window, 0, args.deadline_s
    )
    pids = tuple(int(pid) for pid in args.pids.split(","))
    outcome = measure(options, args.port, pids, time.monotonic() + args.deadline_s, KannelLoad)
    missing = report(options, outcome)
    if missing or len(outcome.load.accepted) < args.messages:
        print(f"FAILED: {missing} delivery report(s) missing at the deadline", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
