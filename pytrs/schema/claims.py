"""Leasing due rows of a durable queue to one worker: the inbox and the outbox share this.

A claim picks due rows in id order and marks them as taken (attempt counted, claim token,
lease) in the caller's transaction. On PostgreSQL the pick uses `FOR UPDATE SKIP LOCKED`, so
several workers and daemons take disjoint rows without waiting on each other; SQLite's
BEGIN IMMEDIATE serialises claims anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def lease_due(
    conn: AsyncConnection, table: Table, due: ColumnElement[bool], limit: int,
    values: Mapping[str, Any],
) -> list[int]:  # fmt: skip
    """Ids of up to `limit` rows matching `due`, oldest first, updated with `values`."""
    query = select(table.c.id).where(due).order_by(table.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list((await conn.execute(query)).scalars())
    if ids:
        await conn.execute(update(table).where(table.c.id.in_(ids)).values(**values))
    return ids
