"""Account administration use cases, shared by the CLI and (later) the web console.

Secrets arrive in clear here and leave only as argon2id hashes; no message raised from this
module contains a secret.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from smsgw.engine.auth import hash_secret, verify_secret
from smsgw.errors import SmsgwError, UnknownAccountError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from smsgw.domain.model import Account
    from smsgw.store.port import Store

MAX_ALLOWED_IPS = 5
_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


class AccountRuleError(SmsgwError):
    """An administrative request breaks an account rule (bad username, too many IPs, ...)."""


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise AccountRuleError("a username is 1-64 letters, digits or . _ @ + -")
    return username


def check_secret(secret: str, what: str) -> str:
    if len(secret) < 8 or len(secret) > 256:  # noqa: PLR2004 - the limits are the rule itself
        raise AccountRuleError(f"the {what} must be 8 to 256 characters")
    return secret


async def create_account(
    store: Store, username: str, password: str, points: int, now: datetime
) -> Account:
    check_username(username)
    check_secret(password, "password")
    if points < 0:
        raise AccountRuleError("initial points cannot be negative")
    return await store.create_account(username, hash_secret(password), points, now)


async def get_account(store: Store, username: str) -> Account:
    account = await store.get_account(username)
    if account is None:
        raise UnknownAccountError(f"no account named {username!r}")
    return account


async def set_password(store: Store, username: str, password: str) -> Account:
    check_secret(password, "password")
    account = await get_account(store, username)
    if account.api_key_hash and verify_secret(account.api_key_hash, password):
        raise AccountRuleError("the login password may not equal the API key")
    return await store.set_password_hash(username, hash_secret(password))


async def set_api_key(store: Store, username: str, api_key: str | None) -> Account:
    """Set (or with None clear) the API key; it may not equal the login password."""
    if api_key is None:
        return await store.set_api_key_hash(username, None)
    check_secret(api_key, "API key")
    account = await get_account(store, username)
    if verify_secret(account.password_hash, api_key):
        raise AccountRuleError("the API key may not equal the login password")
    return await store.set_api_key_hash(username, hash_secret(api_key))


async def set_allowed_ips(store: Store, username: str, entries: Sequence[str]) -> Account:
    """Replace the IP allow-list (an empty list lifts the restriction)."""
    if len(entries) > MAX_ALLOWED_IPS:
        raise AccountRuleError(f"at most {MAX_ALLOWED_IPS} addresses or CIDR blocks")
    normalised: list[str] = []
    for entry in entries:
        try:
            normalised.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise AccountRuleError(f"not an address or CIDR block: {entry!r}") from None
    return await store.set_allowed_ips(username, normalised)


async def topup(store: Store, username: str, points: int, now: datetime) -> Account:
    if points == 0:
        raise AccountRuleError("a top-up of 0 points changes nothing")
    account = await get_account(store, username)
    if account.balance + points < 0:
        raise AccountRuleError("the balance cannot go below 0")
    return await store.topup(username, points, now)


async def set_disabled(store: Store, username: str, *, disabled: bool) -> Account:
    """Disable (-6 Closed User on every request) or enable an account."""
    await get_account(store, username)
    return await store.set_disabled(username, disabled)


async def unlock(store: Store, username: str) -> Account:
    """Lift a lock set by failed authentications, and forget the failures counted."""
    account = await get_account(store, username)
    await store.clear_auth_failures(account.id)
    return await get_account(store, username)


async def set_webhook_secret(store: Store, username: str, secret: str | None) -> Account:
    """Set (or with None clear) the key that signs the account's callbacks."""
    await get_account(store, username)
    if secret is not None:
        check_secret(secret, "webhook secret")
    return await store.set_webhook_secret(username, secret)
