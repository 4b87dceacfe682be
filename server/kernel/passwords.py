"""argon2id password hashing (DESIGN §7), with its cost taken from settings."""

from __future__ import annotations

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
