"""Who is asking: secrets hashed with argon2id, a verification cache, lockout, IP allow-list.

The order of checks (each failure is ``-2`` with a generic detail, except a disabled account):

1. username or secret missing;
2. username locked out by this process's count (even with the right secret), unless the
   store holds it as an account that is not locked any more;
3. unknown username (a failure is recorded and a dummy verification runs, so the time taken
   does not tell an unknown username from a wrong secret);
4. account locked (`Account.locked_until`): failures of every process and node on the
   store count towards it (PROTOCOL.md section 7 locks the username, not one process's view);
5. wrong secret (a failure is recorded here and in the store). Once an account has an API
   key, only the API key opens the API; otherwise the login password does (PROTOCOL.md
   section 7);
6. client address outside the account's allow-list;
7. account disabled: ``-6``.

A success on a fresh read clears the store's count when it holds failures.

Verification cache: argon2 costs tens of milliseconds of CPU, so it runs in a worker thread
and successes are remembered. The key is a keyed BLAKE2b MAC, under a random per-process key, of
``username NUL secret``; the value is the hash the secret was verified against. A hit counts
only while that hash is still the account's current one, and the account row is read on every
request (sendsms: see remembered accounts below), so changing a password or API key invalidates
the cache at once, on every node. The
secret itself is never stored, and a wrong secret never enters the cache.

Remembered accounts (``authenticate(..., remembered=True)``, for sendsms): the copy of the
account this process read last opens the request without a store read, when the secret's
verification is cached against the copy's hash, the address is allowed and the copy is not
disabled. The caller must then accept with ``seen=account.access``: the store refuses the
accept (AccountChangedError) if the account changed meanwhile, in the accept's own
transaction, so a changed password, key, allow-list, a disabled or a locked account holds at
once, on every node, as with a read. Anything but a success on the copy is decided on a fresh read.
Under load the read was a third of a sendsms's CPU: each SQLite commit, of any process, empties
the reader's page cache (bench/accept.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from smsgw.domain.netaddr import address_allowed, client_address
from smsgw.errors import AuthError, ClosedUserError, StoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from smsgw.domain.lockout import Lockout
    from smsgw.domain.model import Account
    from smsgw.domain.netaddr import Network
    from smsgw.store.port import Store

Verify = Callable[[str, str], bool]

log = logging.getLogger("smsgw.auth")


def _utc_now() -> datetime:
    return datetime.now(UTC)


_HASHER = PasswordHasher()  # argon2-cffi's defaults: argon2id, RFC 9106 low-memory profile


def hash_secret(secret: str, hasher: PasswordHasher | None = None) -> str:
    """An argon2id hash of a password or API key, in PHC string form."""
    return (hasher or _HASHER).hash(secret)


def verify_secret(encoded_hash: str, secret: str) -> bool:
    """True when the secret matches the hash (its parameters are read from the hash)."""
    try:
        return _HASHER.verify(encoded_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


class Authenticator:
    """Turns the credentials of a request into an Account, or raises an SmsgoError."""

    def __init__(
        self,
        store: Store,
        lockout: Lockout,
        clock: Callable[[], float],
        trusted_proxies: Sequence[Network] = (),
        *,
        verify: Verify = verify_secret,
        hasher: PasswordHasher | None = None,
        cache_size: int = 10_000,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._lockout = lockout
        self._clock = clock
        self._wall_clock = wall_clock
        self._trusted_proxies = tuple(trusted_proxies)
        self._verify = verify
        self._hasher = hasher or _HASHER
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self._cache_key_secret = secrets.token_bytes(32)
        self._dummy_hash: str | None = None
        self._in_flight: dict[tuple[bytes, str], asyncio.Future[bool]] = {}
        self._accounts: OrderedDict[str, Account] = OrderedDict()

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address, read through the configured trusted proxies."""
        return client_address(peer, forwarded_for, self._trusted_proxies)

    async def authenticate(
        self,
        username: str | None,
        secret: str | None,
        client_ip: str | None,
        *,
        remembered: bool = False,
    ) -> Account:
        """The account these credentials open; AuthError or ClosedUserError otherwise.

        ``remembered``: a copy of the account may open it (see the module); the caller
        then owes the store ``seen=account.access``.
        """
        if not username or not secret:
            raise AuthError
        if self._lockout.is_locked(username, self._clock()):
            await self._locked_here(username)
        if remembered:
            account = self._remembered(username, secret, client_ip)
            if account is not None:
                self._lockout.record_success(username)
                return account
        self._accounts.pop(username, None)
        account = await self._opened(username, secret)
        if not address_allowed(client_ip, account.allowed_ips):
            raise AuthError
        if account.disabled:
            raise ClosedUserError
        self._lockout.record_success(username)
        if account.recent_failures:
            account = await self._cleared(account)
        self._accounts[username] = account
        while len(self._accounts) > self._cache_size:
            self._accounts.popitem(last=False)
        return account

    async def _locked_here(self, username: str) -> None:
        """This process's count locked the name (AuthError, no verification), unless it is
        an account the store does not hold locked: unlocked by the operator, or its count
        cleared by a success elsewhere. For accounts the store's lock is the one that holds."""
        try:
            account = await self._store.get_account(username)
        except StoreError:
            raise AuthError from None
        if account is None or account.locked(self._wall_clock()):
            raise AuthError
        self._lockout.record_success(username)

    async def _opened(self, username: str, secret: str) -> Account:
        """The stored account, if it exists, is not locked and the secret opens it."""
        account = await self._store.get_account(username)
        if account is None:
            await self._verify_dummy(secret)
            self._lockout.record_failure(username, self._clock())
            raise AuthError
        if account.locked(self._wall_clock()):  # locked by failures any process counted
            # Answered like an unknown username (a dummy verification, counted here), so
            # a lock set elsewhere does not tell which usernames exist.
            await self._verify_dummy(secret)
            self._lockout.record_failure(username, self._clock())
            raise AuthError
        if not await self._secret_opens(account, secret):
            self._lockout.record_failure(username, self._clock())
            await self._count_failure(account)
            raise AuthError
        return account

    def _remembered(self, username: str, secret: str, client_ip: str | None) -> Account | None:
        """The remembered copy of the account, if it opens the request without argon2."""
        account = self._accounts.get(username)
        if account is None or account.disabled:
            return None
        if account.locked_until is not None and account.locked(self._wall_clock()):
            return None
        if not address_allowed(client_ip, account.allowed_ips):
            return None
        key = self._cache_key(username, secret)
        verified = self._cache.get(key)
        if verified is None or not hmac.compare_digest(verified, _expected_hash(account)):
            return None
        self._cache.move_to_end(key)
        self._accounts.move_to_end(username)
        return account

    async def _count_failure(self, account: Account) -> None:
        """The failure counts towards the account's lock for every process on the store."""
        try:
            await self._store.record_auth_failure(
                account.id, self._wall_clock(), self._lockout.policy
            )
        except StoreError:
            log.warning("could not count a failed authentication of account %d", account.id)

    async def _cleared(self, account: Account) -> Account:
        """A success clears the failures counted towards the lock (a write, only when
        there are some)."""
        try:
            await self._store.clear_auth_failures(account.id)
        except StoreError:
            log.warning("could not clear the failed authentications of account %d", account.id)
            return account
        return replace(account, recent_failures=0, locked_until=None)

    async def _secret_opens(self, account: Account, secret: str) -> bool:
        expected = _expected_hash(account)
        key = self._cache_key(account.username, secret)
        cached = self._cache.get(key)
        if cached is not None and hmac.compare_digest(cached, expected):
            self._cache.move_to_end(key)
            return True
        if not await self._verify_once(key, expected, secret):
            return False
        self._remember(key, expected)
        return True

    async def _verify_once(self, key: bytes, expected: str, secret: str) -> bool:
        """One argon2 run per (secret, hash), however many requests present it at once.

        Without this, a client opening 64 connections with a cold cache costs 64 argon2 runs
        before the first success is cached.
        """
        flight = (key, expected)
        pending = self._in_flight.get(flight)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self._verify, expected, secret))
            self._in_flight[flight] = pending
            pending.add_done_callback(lambda _: self._in_flight.pop(flight, None))
        return await asyncio.shield(pending)

    async def _verify_dummy(self, secret: str) -> None:
        if self._dummy_hash is None:
            # Made lazily, with the same parameters as real hashes, so timing matches.
            self._dummy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(16))
        await asyncio.to_thread(self._verify, self._dummy_hash, secret)

    def _cache_key(self, username: str, secret: str) -> bytes:
        message = f"{username}\0{secret}".encode(errors="surrogatepass")
        return hashlib.blake2b(message, key=self._cache_key_secret, digest_size=32).digest()

    def _remember(self, key: bytes, verified_hash: str) -> None:
        self._cache[key] = verified_hash
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _expected_hash(account: Account) -> str:
    """The hash a secret must match: the API key's once there is one (PROTOCOL.md 7)."""
    return account.api_key_hash if account.api_key_hash is not None else account.password_hash
