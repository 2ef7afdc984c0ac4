"""The ``smsgw`` command: serve the gateway, run the demo, manage the database and accounts.

``smsgw simulator`` runs the SMSC simulator; ``smsgw simulator mo`` makes it send an MO.

Each command parses its arguments, calls one engine use case, and prints the outcome. Known
failures (a bad setting, a broken account rule, an unknown account) print one line to stderr
and exit 2; they never show a stack trace.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import signal
import sys
from typing import TYPE_CHECKING, TextIO

import httpx
import uvicorn

from smsgw.config import Settings, load_settings
from smsgw.engine import accounts
from smsgw.engine.runner import PARTS
from smsgw.errors import AccountExistsError, SmsgwError
from smsgw.server import run_engine, serve, utc_now
from smsgw.smpp.simulator import ControlApp, Simulator, control_config
from smsgw.smpp.simulator.control import CONTROL_HOST
from smsgw.store import open_store

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from smsgw.domain.model import Account
    from smsgw.store.port import Store

DEMO_USER = "demo"
DEMO_POINTS = 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, os.environ)
        handler: Callable[[Settings, argparse.Namespace], int] = args.handler
        return handler(settings, args)
    except SmsgwError as error:
        print(f"smsgw: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgw", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="path of smsgw.toml (default: $SMSGW_CONFIG)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    serve_cmd = commands.add_parser("serve", help="serve the smsgo HTTP API")
    _log_level(serve_cmd)
    serve_cmd.add_argument(
        "--no-engine", action="store_true", help="the API only (run `smsgw engine` elsewhere)"
    )
    serve_cmd.set_defaults(handler=_serve)
    engine_cmd = commands.add_parser("engine", help="run the delivery engine alone")
    _log_level(engine_cmd)
    engine_cmd.add_argument(
        "--parent", type=int, metavar="PID", help="end with this process (set by `smsgw serve`)"
    )
    engine_cmd.add_argument(
        "--part",
        choices=PARTS,
        default="all",
        help="all of the engine (default), or only delivery (SMPP, dispatch, receipts) or"
        " only the callback worker",
    )
    engine_cmd.set_defaults(handler=_engine)
    demo = commands.add_parser("demo", help="initialise ./smsgw.db, a demo account, and serve")
    demo.set_defaults(handler=_demo)
    db = commands.add_parser("db", help="database schema").add_subparsers(required=True)
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(handler=_db_upgrade)
    _account_commands(commands.add_parser("account", help="manage accounts"))
    _simulator_commands(commands.add_parser("simulator", help="run the SMSC simulator"))
    _callback_commands(commands.add_parser("callbacks", help="the callbacks outbox"))
    _reply_commands(commands.add_parser("replies", help="handset replies (MO)"))
    return parser


def _log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _callback_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    retry = sub.add_parser("retry", help="send failed callbacks again")
    retry.add_argument("--failed", action="store_true", required=True)
    retry.add_argument("--account", help="only this account's callbacks")
    retry.set_defaults(handler=_callbacks_retry)
    listing = sub.add_parser("list", help="list callbacks")
    listing.add_argument("--state", choices=["pending", "sent", "failed"])
    listing.add_argument("--account")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(handler=_callbacks_list)


def _reply_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list stored replies")
    listing.add_argument("--unmatched", action="store_true", help="only replies matching nothing")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(handler=_replies_list)


def _account_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create an account")
    create.add_argument("username")
    create.add_argument("--password", required=True)
    create.add_argument("--points", type=int, default=0)
    create.set_defaults(handler=_account_create)
    topup = sub.add_parser("topup", help="add points (negative to correct)")
    topup.add_argument("username")
    topup.add_argument("points", type=int)
    topup.set_defaults(handler=_account_topup)
    api_key = sub.add_parser("set-api-key", help="set or --clear the API key")
    api_key.add_argument("username")
    api_key.add_argument("key", nargs="?")
    api_key.add_argument("--clear", action="store_true")
    api_key.set_defaults(handler=_account_api_key)
    allow = sub.add_parser("allow-ip", help="set (up to 5) or --clear the IP allow-list")
    allow.add_argument("username")
    allow.add_argument("addresses", nargs="*")
    allow.add_argument("--clear", action="store_true")
    allow.set_defaults(handler=_account_allow_ip)
    for name, disabled in (("disable", True), ("enable", False)):
        toggle = sub.add_parser(name, help=f"{name} an account")
        toggle.add_argument("username")
        toggle.set_defaults(handler=_account_toggle, disabled=disabled)
    unlock = sub.add_parser("unlock", help="lift a lock set by failed authentications")
    unlock.add_argument("username")
    unlock.set_defaults(handler=_account_unlock)
    secret = sub.add_parser(
        "set-webhook-secret", help="sign callbacks with HMAC-SHA256 (or --clear)"
    )
    secret.add_argument("username")
    secret.add_argument("secret", nargs="?")
    secret.add_argument("--clear", action="store_true")
    secret.set_defaults(handler=_account_webhook_secret)
    show = sub.add_parser("show", help="show one account")
    show.add_argument("username")
    show.set_defaults(handler=_account_show)
    sub.add_parser("list", help="list accounts").set_defaults(handler=_account_list)


def _simulator_commands(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="SMPP port (default: simulator.port)")
    parser.add_argument(
        "--control-port", type=int, help="control HTTP port (default: simulator.control_port)"
    )
    # SUPPRESS: without it this option's default would hide `smsgw --config X simulator`.
    parser.add_argument("--config", default=argparse.SUPPRESS, help="path of smsgw.toml")
    parser.set_defaults(handler=_simulator_run)
    sub = parser.add_subparsers(metavar="ACTION")
    mo = sub.add_parser("mo", help="make a running simulator send an MO (handset) message")
    mo.add_argument("--from", dest="source", required=True, help="handset number")
    mo.add_argument("--to", dest="destination", required=True, help="the gateway's number")
    mo.add_argument("text")
    mo.add_argument("--control", help="control endpoint (default: http://127.0.0.1:CONTROL_PORT)")
    mo.set_defaults(handler=_simulator_mo)


def _with_store(settings: Settings, action: Callable[[Store], Awaitable[int]]) -> int:
    async def run() -> int:
        store = open_store(settings.database.url)
        if settings.database.url.startswith("sqlite"):
            await store.upgrade()
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def describe(account: Account, out: TextIO | None = None) -> None:
    """Print an account without any secret (hashes included), to ``out`` or sys.stdout as
    it is at the call (not at import: a redirected stdout gets it)."""
    out = out or sys.stdout
    print(f"username:    {account.username}", file=out)
    print(f"balance:     {account.balance}", file=out)
    print(f"disabled:    {'yes' if account.disabled else 'no'}", file=out)
    print(f"api key:     {'set' if account.api_key_hash else 'not set'}", file=out)
    print(f"allowed ips: {', '.join(account.allowed_ips) or 'any'}", file=out)
    if account.locked_until is not None and account.locked(utc_now()):
        print(f"locked:      until {account.locked_until:%Y-%m-%d %H:%M:%S} UTC", file=out)
    print(f"created:     {account.created_at:%Y-%m-%d %H:%M:%S} UTC", file=out)


def _serve(settings: Settings, args: argparse.Namespace, *, demo: bool = False) -> int:
    serve(
        settings,
        config_path=args.config,
        log_level=getattr(args, "log_level", "info"),
        engine=not getattr(args, "no_engine", False),
        demo=demo,
    )
    return 0


def _engine(settings: Settings, args: argparse.Namespace) -> int:
    run_engine(settings, log_level=args.log_level, parent=args.parent, part=args.part)
    return 0


def _value_or_clear(*, given: bool, clear: bool, what: str) -> bool:
    """Exactly one of a value and ``--clear``; else say so on stderr and return False."""
    if given == clear:
        print(f"smsgw: give either {what} or --clear", file=sys.stderr)
        return False
    return True


def _account_webhook_secret(settings: Settings, args: argparse.Namespace) -> int:
    if not _value_or_clear(given=args.secret is not None, clear=args.clear, what="SECRET"):
        return 2

    async def action(store: Store) -> int:
        describe(await accounts.set_webhook_secret(store, args.username, args.secret))
        return 0

    return _with_store(settings, action)


def _callbacks_retry(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        if args.account is not None:
            await accounts.get_account(store, args.account)
        count = await store.retry_failed_callbacks(args.account, utc_now())
        print(f"{count} failed callback(s) queued again")
        return 0

    return _with_store(settings, action)


def _callbacks_list(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        rows = await store.list_callbacks(args.state, args.account, args.limit)
        for row in rows:
            print(
                f"{row.id}\t{row.username}\t{row.kind}\t{row.state}\t{row.attempts}\t"
                f"{row.msgid or ''}\t{row.last_error or ''}\t{row.url}"
            )
        return 0

    return _with_store(settings, action)


def _replies_list(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        for row in await store.list_replies(args.unmatched, args.limit):
            print(
                f"{row.id}\t{row.received_at:%Y-%m-%d %H:%M:%S}\t{row.srcaddr}\t{row.dstaddr}"
                f"\t{row.msgid or 'unmatched'}\t{row.body}"
            )
        return 0

    return _with_store(settings, action)


def _db_upgrade(settings: Settings, _: argparse.Namespace) -> int:
    async def run() -> int:
        store = open_store(settings.database.url)
        try:
            applied = await store.upgrade()
        finally:
            await store.close()
        print(f"applied migrations: {applied}" if applied else "schema is current")
        return 0

    return asyncio.run(run())


def _account_create(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        account = await accounts.create_account(
            store, args.username, args.password, args.points, utc_now()
        )
        describe(account)
        return 0

    return _with_store(settings, action)


def _account_topup(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        describe(await accounts.topup(store, args.username, args.points, utc_now()))
        return 0

    return _with_store(settings, action)


def _account_api_key(settings: Settings, args: argparse.Namespace) -> int:
    if not _value_or_clear(given=args.key is not None, clear=args.clear, what="KEY"):
        return 2

    async def action(store: Store) -> int:
        describe(await accounts.set_api_key(store, args.username, args.key))
        return 0

    return _with_store(settings, action)


def _account_allow_ip(settings: Settings, args: argparse.Namespace) -> int:
    if not _value_or_clear(given=bool(args.addresses), clear=args.clear, what="ADDR..."):
        return 2

    async def action(store: Store) -> int:
        describe(await accounts.set_allowed_ips(store, args.username, args.addresses))
        return 0

    return _with_store(settings, action)


def _account_toggle(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        describe(await accounts.set_disabled(store, args.username, disabled=args.disabled))
        return 0

    return _with_store(settings, action)


def _account_unlock(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        describe(await accounts.unlock(store, args.username))
        return 0

    return _with_store(settings, action)


def _account_show(settings: Settings, args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        describe(await accounts.get_account(store, args.username))
        return 0

    return _with_store(settings, action)


def _account_list(settings: Settings, _: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        for account in await store.list_accounts():
            state = "disabled" if account.disabled else "active"
            print(f"{account.username}\t{account.balance}\t{state}")
        return 0

    return _with_store(settings, action)


def _simulator_run(settings: Settings, args: argparse.Namespace) -> int:
    """Runs the simulator until SIGINT/SIGTERM; uvicorn owns the signals and the shutdown."""
    simulator_settings = settings.simulator
    port = simulator_settings.port if args.port is None else args.port
    control_port = args.control_port or simulator_settings.control_port
    simulator = Simulator(simulator_settings)

    async def startup() -> None:
        bound = await simulator.start(simulator_settings.host, port)
        print(
            f"smsgw simulator: SMPP on {simulator_settings.host}:{bound},"
            f" control on http://{CONTROL_HOST}:{control_port}",
            flush=True,
        )

    app = ControlApp(simulator, on_startup=startup, on_shutdown=simulator.stop)
    server = uvicorn.Server(control_config(app, control_port))
    # uvicorn shuts down on SIGINT/SIGTERM, then raises the signal again for the previous
    # handler: by then the shutdown was clean, so the command ends normally.
    previous = signal.signal(signal.SIGTERM, _shut_down_already)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if server.started else 1


def _shut_down_already(_signal: int, _frame: object) -> None:
    """SIGTERM after uvicorn's clean shutdown: nothing left to do."""


def _simulator_mo(settings: Settings, args: argparse.Namespace) -> int:
    control = args.control or f"http://{CONTROL_HOST}:{settings.simulator.control_port}"
    url = f"{control.rstrip('/')}/mo"
    form = {"from": args.source, "to": args.destination, "text": args.text}
    try:
        response = httpx.post(url, data=form, timeout=10)
    except httpx.HTTPError as error:
        print(f"smsgw: cannot reach the simulator at {url}: {error}", file=sys.stderr)
        return 2
    if response.status_code != httpx.codes.OK:
        print(f"smsgw: {response.text}", file=sys.stderr)
        return 1
    print(response.text)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    """Prepare a demo account with a fresh password, print how to use it, then serve."""
    password = secrets.token_urlsafe(12)

    async def action(store: Store) -> int:
        try:
            account = await accounts.create_account(
                store, DEMO_USER, password, DEMO_POINTS, utc_now()
            )
        except AccountExistsError:
            account = await accounts.set_password(store, DEMO_USER, password)
        _print_demo(settings, account, password)
        return 0

    _with_store(settings, action)
    # The demo's callbacks go to the newcomer's own machine.
    demo_settings = dataclasses.replace(
        settings,
        webhooks=dataclasses.replace(settings.webhooks, allow_private_networks=True),
    )
    return _serve(demo_settings, args, demo=True)


def _print_demo(settings: Settings, account: Account, password: str) -> None:
    base = f"http://{settings.http.host}:{settings.http.port}/sms_gw"
    print("smsgw demo")
    print(f"  database: {settings.database.shown_url}")
    print(f"  username: {account.username}")
    print(f"  password: {password}   (new at every `make run`)")
    print(f"  balance:  {account.balance} points")
    root = f"http://{settings.http.host}:{settings.http.port}"
    auth = f"username={account.username}&password={password}"
    print("  the built-in SMSC simulator delivers; callbacks go to this demo's /demo endpoint.")
    print("  try (the README walks through it):")
    print(
        f"    curl '{base}/sendsms.aspx?{auth}&dstaddr=0912345678&encoding=ASCII&smbody=Hello"
        f"&response={root}/demo/dlr&replyurl={root}/demo/reply'"
    )
    print(f"    curl '{base}/query.asp?{auth}&msgid=MSGID&dstaddr=0912345678'")
    print(f"    curl '{root}/demo/log'")
    print(
        "    .venv/bin/smsgw simulator mo --from 0912345678 --to 0911000000 Thanks"
        f" --control {root}/simulator"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
