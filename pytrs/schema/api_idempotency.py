"""The remembered answers of the API's idempotent requests (`api_idempotency`).

Place in the flow: `web/api/idempotency.py` calls these inside the request's own transaction:
`find` a key's stored answer, `reserve` a new key before the operation runs (its primary key
(user, key) makes a concurrent request with the same key wait on PostgreSQL until the first
commits, then fail with IntegrityError; SQLite's BEGIN IMMEDIATE serialises them anyway),
`complete` it with the answer, and `prune` answers older than a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.tables import api_idempotency

KEEP = timedelta(hours=24)
_t = api_idempotency.c


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    request_hash: str
    status: int
    body: str
    location: str | None = None


async def find(conn: AsyncConnection, user_id: int, key: str) -> StoredAnswer | None:
    row = (
        await conn.execute(
            select(_t.request_hash, _t.status_code, _t.response_body, _t.location).where(
                _t.user_id == user_id, _t.idempotency_key == key
            )
        )
    ).first()
    if row is None:
        return None
    return StoredAnswer(row.request_hash, row.status_code, row.response_body, row.location)


async def reserve(
    conn: AsyncConnection, user_id: int, key: str, request_hash: str, now: datetime
) -> None:
    """Claim `key` for this request (status 0 until `complete`). Raises IntegrityError when
    another transaction holds it."""
    await conn.execute(
        insert(api_idempotency).values(
            user_id=user_id, idempotency_key=key, request_hash=request_hash, status_code=0,
            response_body="", create_time=now,
        )
    )  # fmt: skip


async def complete(
    conn: AsyncConnection, user_id: int, key: str, status: int, body: str,
    location: str | None = None,
) -> None:  # fmt: skip
    await conn.execute(
        update(api_idempotency)
        .where(_t.user_id == user_id, _t.idempotency_key == key)
        .values(status_code=status, response_body=body, location=location)
    )


async def prune(conn: AsyncConnection, now: datetime) -> None:
    """Forget answers older than KEEP: a retry comes within minutes, not days."""
    await conn.execute(delete(api_idempotency).where(_t.create_time < now - KEEP))
