"""Agents' password hashes: argon2id, as stored in Znuny's `users.pw`.

Place in the flow: `pytrs users add` and `pytrs users passwd` hash here before the hash is
stored (`schema/users_repo.py`); the web login (a later issue) verifies here. The hasher's own
defaults (argon2id, its recommended time and memory cost) are used, and they are written into
each hash, so a later change of defaults still verifies older hashes.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """A password refused before hashing: empty or too short."""


def check(password: str) -> None:
    """Raise WeakPassword for a password too short to be stored."""
    if not password:
        raise WeakPassword("the password is empty")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password is too short: at least {MIN_LENGTH} characters")


def hash_password(password: str) -> str:
    """The `$argon2id$…` hash of a checked password."""
    check(password)
    return _hasher.hash(password)


def verify(stored: str, password: str) -> bool:
    """Whether `password` matches the stored hash (False for no hash or a foreign one)."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
