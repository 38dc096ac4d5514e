"""Throw-away TLS material for the listener tests: self-signed certificates (shared with the
test relay, `tests/servers/certs.py`) and users files of argon2id hashes."""

from __future__ import annotations

from pathlib import Path

from pytrs.users import passwords

from ..servers.certs import Pair, make_pair

__all__ = ["Pair", "make_pair", "users_file"]


def users_file(path: Path, users: dict[str, str]) -> Path:
    """A users file with a comment, a blank line and one `name:hash` line per user."""
    lines = ["# SMTP AUTH users of the tests", ""]
    lines += [f"{name}:{passwords.hash_password(pw)}" for name, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
