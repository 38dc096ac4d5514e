"""Leasing due rows of a durable queue to one worker: the inbox and the outbox share this.

A claim picks due rows in id order and marks them as taken (attempt counted, claim token,
lease) in the caller's transaction. On PostgreSQL the pick uses `FOR UPDATE SKIP LOCKED`, so
several workers and daemons take disjoint rows without waiting on each other; SQLite's
BEGIN IMMEDIATE serialises claims anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import for_update


class Taken(NamedTuple):
    """The rows a lease took, oldest first, and the sum of their `size`."""

    ids: list[int]
    size: int


async def lease_due(
    conn: AsyncConnection, table: Table, due: ColumnElement[bool], limit: int,
    values: Mapping[str, Any], *, max_bytes: int = 0,
) -> Taken:  # fmt: skip
    """Up to `limit` rows matching `due`, oldest first, updated with `values`.

    With `max_bytes`, rows are taken only while the sum of their `size` stays within it, and
    always at least one: a batch of big mails is held in memory whole by its worker.
    """
    query = select(table.c.id, table.c.size).where(due).order_by(table.c.id).limit(limit)
    query = for_update(conn, query, skip_locked=True)
    ids: list[int] = []
    total = 0
    for row_id, size in await conn.execute(query):
        if ids and max_bytes and total + (size or 0) > max_bytes:
            break
        total += size or 0
        ids.append(row_id)
    if ids:
        await conn.execute(update(table).where(table.c.id.in_(ids)).values(**values))
    return Taken(ids, total)
