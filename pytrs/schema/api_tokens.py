"""Bearer tokens of the JSON API (`api_token`): create, list, revoke, look up.

Place in the flow: `pytrs tokens` (commands/tokens.py) creates, lists and revokes them; the
API's authentication (`web/api/auth.py`) looks one up by the SHA-256 of the token a request
presents and bumps its `last_used_time`. The plaintext is returned once, by `create`, and never
stored: a database dump yields no usable token. `hint` (the token's first characters) lets an
admin tell tokens apart. Times are naive UTC, as every timestamp column.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select, update

from pytrs.schema.database import Database
from pytrs.schema.tables import api_token, users

PREFIX = "pytrs_"
SCOPES = ("read", "write", "admin")  # ordered: each allows what the ones before it allow
HINT_LENGTH = 10  # "pytrs_" and 4 characters of the secret part: enough to tell apart
# A token's last use is written at most this often: a busy integration would otherwise write
# the row on every request.
TOUCH_INTERVAL_SECONDS = 60


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    user_id: int
    login: str
    name: str
    scope: str
    hint: str
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: datetime | None

    def state(self, now: datetime) -> str:
        """ "active", "revoked" or "expired" at `now`."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def scope_allows(held: str, needed: str) -> bool:
    """Whether a token of scope `held` may do what needs scope `needed`."""
    return SCOPES.index(held) >= SCOPES.index(needed)


async def create(
    db: Database, *, user_id: int, name: str, scope: str, now: datetime,
    expires: datetime | None = None,
) -> tuple[int, str]:  # fmt: skip
    """Store a new token of `user_id`; returns (id, the plaintext token) — shown once."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        token_id = await conn.scalar(
            insert(api_token)
            .values(
                user_id=user_id, name=name, token_hash=hash_token(token),
                hint=token[:HINT_LENGTH], scope=scope, create_time=now, expires_time=expires,
            )
            .returning(api_token.c.id)
        )  # fmt: skip
    return int(token_id), token


def _rows() -> Select[Any]:
    t = api_token.c
    return select(
        t.id, t.user_id, users.c.login, t.name, t.scope, t.hint, t.create_time,
        t.expires_time, t.last_used_time, t.revoked_time,
    ).join(users, users.c.id == t.user_id)  # fmt: skip


def _token(r: Any) -> TokenRow:
    return TokenRow(*r)


async def listing(db: Database, *, user_id: int | None = None) -> list[TokenRow]:
    """Every token (of `user_id` only, if given), oldest first."""
    query = _rows().order_by(api_token.c.id)
    if user_id is not None:
        query = query.where(api_token.c.user_id == user_id)
    async with db.connect() as conn:
        return [_token(r) for r in await conn.execute(query)]


async def lookup(db: Database, token: str) -> TokenRow | None:
    """The token's row by its hash, whatever its state (the caller checks it), or None."""
    async with db.connect() as conn:
        row = (
            await conn.execute(_rows().where(api_token.c.token_hash == hash_token(token)))
        ).first()
    return _token(row) if row is not None else None


async def revoke(db: Database, token_id: int, *, now: datetime) -> bool:
    """Revoke a token at once; False when no token has that id. Revoking twice keeps the
    first time."""
    async with db.transaction() as conn:
        found = await conn.scalar(select(api_token.c.id).where(api_token.c.id == token_id))
        if found is None:
            return False
        await conn.execute(
            update(api_token)
            .where(api_token.c.id == token_id, api_token.c.revoked_time.is_(None))
            .values(revoked_time=now)
        )
    return True


async def touch(db: Database, token: TokenRow, *, now: datetime) -> None:
    """Record a use of the token, unless one was recorded in the last minute."""
    last = token.last_used
    if last is not None and (now - last).total_seconds() < TOUCH_INTERVAL_SECONDS:
        return
    async with db.transaction() as conn:
        await conn.execute(
            update(api_token).where(api_token.c.id == token.id).values(last_used_time=now)
        )
