"""Password hashing for manager users (argon2id, salted and slow by design)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from appliance.errors import UsageError

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
MIN_LENGTH = 8


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise UsageError(f"password is too short ({len(password)} characters)", f"use at least {MIN_LENGTH}")
    if len(password) > 1024:
        raise UsageError("password is longer than 1024 characters", "use a shorter password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
