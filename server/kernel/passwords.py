"""argon2id password hashing (docs/ARCHITECTURE.md §7), with its cost taken from settings.

A hash costs hundreds of milliseconds of CPU by design. Run on the event loop it would stall
everything the process serves — fill-authorization replies included — for as long as
logins keep coming, so the request path uses the `*_async` functions: the work runs in a
small thread pool (argon2-cffi releases the GIL while hashing) whose size,
``[auth] argon2_max_concurrent``, bounds how much CPU logins can take at once. The plain
functions are for the CLI and the seed, which have no loop to protect.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.kernel.settings import Auth


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hasher(rules: Auth) -> PasswordHasher:
    return _hasher(rules.argon2_time_cost, rules.argon2_memory_kib, rules.argon2_parallelism)


def hash_password(rules: Auth, password: str) -> str:
    return hasher(rules).hash(password)


def verify_password(rules: Auth, stored_hash: str, password: str) -> bool:
    try:
        return hasher(rules).verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(rules: Auth, stored_hash: str) -> bool:
    return hasher(rules).check_needs_rehash(stored_hash)


@lru_cache(maxsize=4)
def _executor(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")


@lru_cache(maxsize=4)
def _decoy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash(secrets.token_urlsafe(16))


def decoy_hash(rules: Auth) -> str:
    """A hash of nothing anyone knows, at the configured cost: checking a password against it
    takes as long as against a real user's, so an unknown username answers no faster."""
    return _decoy_hash(rules.argon2_time_cost, rules.argon2_memory_kib, rules.argon2_parallelism)


async def hash_password_async(rules: Auth, password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _executor(rules.argon2_max_concurrent), hash_password, rules, password
    )


async def verify_password_async(rules: Auth, stored_hash: str | None, password: str) -> bool:
    """Verify off the loop; ``stored_hash`` None (no such user) is checked against the decoy."""
    loop = asyncio.get_running_loop()

    def check() -> bool:
        ok = verify_password(rules, stored_hash or decoy_hash(rules), password)
        return ok and stored_hash is not None

    return await loop.run_in_executor(_executor(rules.argon2_max_concurrent), check)
