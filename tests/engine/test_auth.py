from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import pytest
from argon2 import PasswordHasher

from smsgw.domain.lockout import Lockout, LockPolicy
from smsgw.domain.model import Account
from smsgw.engine.auth import Authenticator, hash_secret, verify_secret
from smsgw.errors import AuthError, ClosedUserError
from smsgw.store.memory import MemoryStore

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
PASSWORD = "correct horse"
API_KEY = "k3y-0123456789"


class CountingVerify:
    """verify_secret, counting how often argon2 really runs."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, encoded_hash: str, secret: str) -> bool:
        with self._lock:
            self.calls += 1
        return verify_secret(encoded_hash, secret)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryStore):
    """The in-memory store, counting account reads."""

    reads = 0

    async def get_account(self, username: str) -> Account | None:
        self.reads += 1
        return await super().get_account(username)


class Harness:
    def __init__(self) -> None:
        self.store = CountingStore()
        self.clock = Clock()
        self.verify = CountingVerify()
        self.auth = Authenticator(
            self.store,
            Lockout(failures=3, window_s=300, lock_s=900),
            self.clock,
            verify=self.verify,
            hasher=CHEAP,
            wall_clock=self.wall_clock,
        )

    def wall_clock(self) -> datetime:
        """The store's time, moving with the lockout's clock."""
        return NOW + timedelta(seconds=self.clock.now)


@pytest.fixture
async def harness() -> Harness:
    harness = Harness()
    await harness.store.create_account("alice", hash_secret(PASSWORD, CHEAP), 100, NOW)
    return harness


async def fail_times(harness: Harness, times: int, username: str = "alice") -> None:
    for _ in range(times):
        with pytest.raises(AuthError):
            await harness.auth.authenticate(username, "wrong", None)


def test_hash_secret_makes_argon2id_hashes_that_verify() -> None:
    """hash_secret gives an argon2id hash that verify_secret accepts only with the secret."""
    encoded = hash_secret(PASSWORD, CHEAP)
    assert encoded.startswith("$argon2id$")
    assert PASSWORD not in encoded
    assert verify_secret(encoded, PASSWORD)
    assert not verify_secret(encoded, "wrong")


def test_verify_secret_is_false_for_a_malformed_hash() -> None:
    """A corrupt stored hash never verifies and never raises."""
    assert not verify_secret("not-a-hash", PASSWORD)


async def test_right_password_opens_the_account(harness: Harness) -> None:
    """The right username and password return the account."""
    account = await harness.auth.authenticate("alice", PASSWORD, "192.0.2.1")
    assert account.username == "alice"


@pytest.mark.parametrize(
    ("username", "secret"), [(None, PASSWORD), ("alice", None), ("", PASSWORD), ("alice", "")]
)
async def test_missing_credentials_fail(
    harness: Harness, username: str | None, secret: str | None
) -> None:
    """A missing or empty username or secret is an authorization failure."""
    with pytest.raises(AuthError):
        await harness.auth.authenticate(username, secret, None)
    assert harness.verify.calls == 0


async def test_wrong_password_fails(harness: Harness) -> None:
    """A wrong password is an authorization failure."""
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", "wrong", None)


async def test_unknown_user_fails_after_a_dummy_verification(harness: Harness) -> None:
    """An unknown username costs one argon2 verification, like a wrong secret does."""
    with pytest.raises(AuthError):
        await harness.auth.authenticate("nobody", PASSWORD, None)
    assert harness.verify.calls == 1


async def test_unknown_users_are_locked_out_too(harness: Harness) -> None:
    """Failures for an unknown username count, so lockout does not reveal which names exist."""
    await fail_times(harness, 3, username="nobody")
    assert harness.auth._lockout.is_locked("nobody", harness.clock.now)


async def verifications_until_refused_at_once(harness: Harness, username: str) -> list[int]:
    """Argon2 runs of each of 4 attempts of ``username`` with the right password."""
    runs = []
    for _ in range(4):
        before = harness.verify.calls
        with pytest.raises(AuthError):
            await harness.auth.authenticate(username, PASSWORD, None)
        runs.append(harness.verify.calls - before)
    return runs


async def test_a_lock_set_elsewhere_answers_like_an_unknown_username(harness: Harness) -> None:
    """An account locked by another process's failures is refused, also for the right
    password, exactly as an unknown username is: a verification per attempt until this
    process's own count locks the name, then none."""
    alice = await harness.store.get_account("alice")
    assert alice is not None
    for _ in range(3):  # counted by another process
        await harness.store.record_auth_failure(
            alice.id, harness.wall_clock(), LockPolicy(3, 300, 900)
        )
    locked = await verifications_until_refused_at_once(harness, "alice")
    assert locked == await verifications_until_refused_at_once(harness, "nobody") == [1, 1, 1, 0]


async def test_lockout_refuses_even_the_right_password(harness: Harness) -> None:
    """After too many failures the right password is refused too, without running argon2."""
    await fail_times(harness, 3)
    calls = harness.verify.calls
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, None)
    assert harness.verify.calls == calls


async def test_lockout_lifts_after_lock_s(harness: Harness) -> None:
    """Once lock_s has passed on the injected clock the right password works again."""
    await fail_times(harness, 3)
    harness.clock.now += 900
    account = await harness.auth.authenticate("alice", PASSWORD, None)
    assert account.username == "alice"


async def test_success_clears_earlier_failures(harness: Harness) -> None:
    """A success resets the failure count of the username."""
    await fail_times(harness, 2)
    await harness.auth.authenticate("alice", PASSWORD, None)
    await fail_times(harness, 2)
    await harness.auth.authenticate("alice", PASSWORD, None)


async def test_api_key_replaces_the_password_once_set(harness: Harness) -> None:
    """With an API key set only the key opens the API; the login password no longer does."""
    await harness.store.set_api_key_hash("alice", hash_secret(API_KEY, CHEAP))
    assert (await harness.auth.authenticate("alice", API_KEY, None)).username == "alice"
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, None)


async def test_the_api_key_does_not_open_an_account_without_one(harness: Harness) -> None:
    """Without an API key set only the password opens the account."""
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", API_KEY, None)


async def test_allow_list_admits_addresses_inside_a_cidr_block(harness: Harness) -> None:
    """An address inside an allowed block is admitted."""
    await harness.store.set_allowed_ips("alice", ["198.51.100.0/24"])
    account = await harness.auth.authenticate("alice", PASSWORD, "198.51.100.77")
    assert account.username == "alice"


@pytest.mark.parametrize("address", ["198.51.101.1", None])
async def test_allow_list_refuses_other_addresses(harness: Harness, address: str | None) -> None:
    """An address outside the allow-list, or no address at all, is refused."""
    await harness.store.set_allowed_ips("alice", ["198.51.100.0/24"])
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, address)


async def test_disabled_account_is_a_closed_user(harness: Harness) -> None:
    """A disabled account with the right secret answers Closed User."""
    await harness.store.set_disabled("alice", disabled=True)
    with pytest.raises(ClosedUserError):
        await harness.auth.authenticate("alice", PASSWORD, None)


async def test_disabled_account_with_a_wrong_secret_is_an_auth_failure(harness: Harness) -> None:
    """A wrong secret says nothing about whether the account is disabled."""
    await harness.store.set_disabled("alice", disabled=True)
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", "wrong", None)


async def test_cache_hit_skips_argon2(harness: Harness) -> None:
    """A second success with the same secret is answered from the cache."""
    await harness.auth.authenticate("alice", PASSWORD, None)
    await harness.auth.authenticate("alice", PASSWORD, None)
    assert harness.verify.calls == 1


async def test_concurrent_first_requests_share_one_verification(harness: Harness) -> None:
    """Many requests with the same cold secret at once run argon2 only once."""
    results = await asyncio.gather(
        *(harness.auth.authenticate("alice", PASSWORD, None) for _ in range(20))
    )
    assert {account.username for account in results} == {"alice"}
    assert harness.verify.calls == 1


async def test_wrong_secrets_never_enter_the_cache(harness: Harness) -> None:
    """Each wrong attempt runs argon2 again and leaves the cache empty."""
    await fail_times(harness, 2)
    assert harness.verify.calls == 2
    assert len(harness.auth._cache) == 0


async def test_changing_the_password_invalidates_the_cache(harness: Harness) -> None:
    """After a password change the old password fails at once, even though it was cached."""
    await harness.auth.authenticate("alice", PASSWORD, None)
    await harness.store.set_password_hash("alice", hash_secret("new password", CHEAP))
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, None)
    assert (await harness.auth.authenticate("alice", "new password", None)).username == "alice"


async def test_setting_an_api_key_invalidates_a_cached_password(harness: Harness) -> None:
    """A cached password stops opening the API once an API key is set."""
    await harness.auth.authenticate("alice", PASSWORD, None)
    await harness.store.set_api_key_hash("alice", hash_secret(API_KEY, CHEAP))
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, None)


async def test_cache_is_bounded_and_keeps_no_secret(harness: Harness) -> None:
    """The cache holds at most cache_size entries, keyed by digests, never by the secret."""
    auth = Authenticator(harness.store, Lockout(), harness.clock, cache_size=1, hasher=CHEAP)
    await harness.store.create_account("bob", hash_secret("bob pw", CHEAP), 0, NOW)
    await auth.authenticate("alice", PASSWORD, None)
    await auth.authenticate("bob", "bob pw", None)
    assert len(auth._cache) == 1
    (key,) = auth._cache
    assert PASSWORD.encode() not in key
    assert b"bob pw" not in key


async def test_cache_hits_still_obey_the_allow_list(harness: Harness) -> None:
    """A cached secret does not bypass a newly set allow-list."""
    await harness.auth.authenticate("alice", PASSWORD, "192.0.2.1")
    await harness.store.set_allowed_ips("alice", ["198.51.100.0/24"])
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, "192.0.2.1")


async def test_auth_errors_are_generic_and_echo_no_input(harness: Harness) -> None:
    """Every failure reads the same and never contains the username or the secret."""
    errors: list[AuthError] = []
    for username, secret in [("alice", "s3cr3t-guess"), ("nobody-x", "s3cr3t-guess")]:
        with pytest.raises(AuthError) as caught:
            await harness.auth.authenticate(username, secret, None)
        errors.append(caught.value)
    texts = {(str(error), repr(error), error.statusstr) for error in errors}
    assert len(texts) == 1
    shown = "".join(texts.pop())
    assert not any(word in shown for word in ("s3cr3t", "alice", "nobody"))


async def test_secrets_appear_in_no_repr(harness: Harness) -> None:
    """Neither the authenticator nor the returned account shows the secret."""
    account = await harness.auth.authenticate("alice", PASSWORD, None)
    assert PASSWORD not in repr(harness.auth)
    assert PASSWORD not in repr(account)


# remembered accounts (sendsms) ------------------------------------------------------------
async def test_a_remembered_account_opens_without_a_store_read(harness: Harness) -> None:
    """After one read, the same secret from an allowed address is answered from the copy."""
    first = await harness.auth.authenticate("alice", PASSWORD, None, remembered=True)
    again = [
        await harness.auth.authenticate("alice", PASSWORD, None, remembered=True) for _ in range(3)
    ]
    assert harness.store.reads == 1
    assert harness.verify.calls == 1
    assert {account.access for account in again} == {first.access}


async def test_without_remembered_every_request_reads_the_account(harness: Harness) -> None:
    """query, point, cancel and the rest read the account each time."""
    await harness.auth.authenticate("alice", PASSWORD, None, remembered=True)
    await harness.auth.authenticate("alice", PASSWORD, None)
    await harness.auth.authenticate("alice", PASSWORD, None)
    assert harness.store.reads == 3


async def test_a_wrong_secret_is_decided_on_a_fresh_read(harness: Harness) -> None:
    """A copy never refuses: a wrong secret reads the account, runs argon2 and counts
    towards the lockout as always."""
    await harness.auth.authenticate("alice", PASSWORD, None, remembered=True)
    for _ in range(3):
        with pytest.raises(AuthError):
            await harness.auth.authenticate("alice", "wrong", None, remembered=True)
    assert harness.store.reads == 4
    assert harness.verify.calls == 4
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, None, remembered=True)


async def test_a_new_password_opens_at_once_despite_the_copy(harness: Harness) -> None:
    """A password changed elsewhere: the new one is checked on a fresh read and opens the
    account; the copy is then the fresh account."""
    await harness.auth.authenticate("alice", PASSWORD, None, remembered=True)
    changed = await harness.store.set_password_hash("alice", hash_secret("new pw", CHEAP))
    account = await harness.auth.authenticate("alice", "new pw", None, remembered=True)
    assert account.access == changed.access
    again = await harness.auth.authenticate("alice", "new pw", None, remembered=True)
    assert again.access == changed.access
    assert harness.store.reads == 2


@pytest.mark.parametrize("address", ["198.51.100.7", None])
async def test_a_copy_outside_its_allow_list_is_decided_on_a_fresh_read(
    harness: Harness, address: str | None
) -> None:
    """The copy's own allow-list is obeyed; the refusal comes from a fresh read."""
    await harness.store.set_allowed_ips("alice", ["192.0.2.0/24"])
    await harness.auth.authenticate("alice", PASSWORD, "192.0.2.1", remembered=True)
    with pytest.raises(AuthError):
        await harness.auth.authenticate("alice", PASSWORD, address, remembered=True)
    assert harness.store.reads == 2


async def test_remembered_accounts_are_bounded(harness: Harness) -> None:
    """At most cache_size copies; the least recently used one is read again."""
    auth = Authenticator(harness.store, Lockout(), harness.clock, cache_size=1, hasher=CHEAP)
    await harness.store.create_account("bob", hash_secret("bob pw", CHEAP), 0, NOW)
    await auth.authenticate("alice", PASSWORD, None, remembered=True)
    await auth.authenticate("bob", "bob pw", None, remembered=True)
    await auth.authenticate("bob", "bob pw", None, remembered=True)
    assert harness.store.reads == 2
    await auth.authenticate("alice", PASSWORD, None, remembered=True)
    assert harness.store.reads == 3


def test_client_address_uses_the_trusted_proxies() -> None:
    """The authenticator reads X-Forwarded-For only through its trusted proxies."""
    auth = Authenticator(MemoryStore(), Lockout(), Clock(), [ip_network("10.0.0.0/8")])
    assert auth.client_address("10.0.0.1", "203.0.113.5") == "203.0.113.5"
    assert auth.client_address("192.0.2.1", "203.0.113.5") == "192.0.2.1"
