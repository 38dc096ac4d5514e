"""Ticket-number counters by Znuny's own protocol, for running beside Znuny (mode "znuny").

Place in the flow: ``tickets.numbers.new_numbers`` asks for the counters of a batch of new
tickets; in ``[database] mode = "znuny"`` the postmaster and the ticket service hand it
``allocate`` from here instead of pytrs's one-row-per-scope counter (``ticket_repo``), because
Znuny creates tickets in the same database and reads ``ticket_number_counter`` its own way.

The facts follow Znuny 7.0 (``Kernel/System/Ticket/NumberBase.pm``, ``TicketNumberCounterAdd``;
``Number/DateChecksum.pm``, ``Date.pm``, ``AutoIncrement.pm``). One number is one row:

1. insert a row with ``counter`` 0, a unique 32-character ``counter_uid`` and ``create_time``
   now, and commit it (Znuny's statements autocommit);
2. wait 50 ms, as Znuny does, so that rows other sessions inserted just before are visible;
3. for every row still at 0 up to our own id, in id order, set ``counter`` to the previous
   row's counter + 1 (the first row this session fills: + the offset) with a guarded
   ``UPDATE … WHERE counter = 0``, so two sessions filling the same row write the same value
   and only the first one counts;
4. read our own rows back.

Date-based generators (Date, DateChecksum) only look at rows created since midnight, so their
counter starts at 1 every day. "Now" and "midnight" are in Znuny's ``OTRSTimeZone``, which
pytrs takes to be UTC (Znuny's default; every time pytrs writes is UTC). A batch of N new
tickets inserts N rows in one statement and fills them in one pass.

Cleanup is left to Znuny: its daemon's cron task ``TicketNumberCounterCleanup`` (every 10
minutes, ``Daemon::SchedulerCronTaskManager::Task###TicketNumberCounterCleanup``) keeps the
newest 10 rows and those younger than 10 minutes, whoever wrote them, and a Znuny without its
daemon does not work anyway; deleting from two systems would add nothing but races.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import Database
from pytrs.schema.tables import ticket, ticket_number_counter

# Znuny sleeps this long between inserting its row and filling the zero rows: rows inserted
# by other sessions a moment before ours must be committed and visible by then, or both
# sessions would compute the same counter for different rows.
SETTLE_SECONDS = 0.05
UID_CHARS = 32  # ticket_number_counter.counter_uid is VARCHAR(32) in Znuny


def new_uid() -> str:
    """A unique counter uid: process id, time and hex digits, 32 characters (Znuny's form)."""
    stamp = f"{os.getpid()}{time.time_ns() // 1000}"[: UID_CHARS - 8]
    return stamp + secrets.token_hex(UID_CHARS)[: UID_CHARS - len(stamp)]


def midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def allocate(
    conn: AsyncConnection, count: int, now: datetime, *, daily: bool, offset: int = 1,
    settle: float = SETTLE_SECONDS,
) -> list[int]:  # fmt: skip
    """`count` counter values by Znuny's protocol, in the order of the rows inserted.

    Each step commits on its own where the database has side transactions to spare
    (``Database.side_transactions``: PostgreSQL and MariaDB, the databases Znuny runs on): a row
    Znuny cannot see until pytrs's batch commits would get the same counter as Znuny's next one.
    On SQLite (one writer at a time, no Znuny; the tests) the steps run in `conn`'s transaction.
    `offset` is added to the first counter this call fills (Znuny's Offset; 1 unless
    AutoIncrement starts from existing tickets).
    """
    if count <= 0:
        return []
    db = Database(conn.engine)
    since = midnight(now) if daily else None
    uids = [new_uid() for _ in range(count)]
    stamp = now.replace(microsecond=0)
    async with _step(db, conn) as step:
        await step.execute(
            insert(ticket_number_counter),
            # Znuny writes whole seconds (DateTime->ToString).
            [{"counter": 0, "counter_uid": uid, "create_time": stamp} for uid in uids],
        )
    if db.side_transactions:
        await asyncio.sleep(settle)
    async with _step(db, conn) as step:
        own = await _ids(step, uids)
    await fill(db, conn, max(own.values()), since, offset)
    async with _step(db, conn) as step:
        found = await _counters(step, uids)
    return [found[uid] for uid in uids]


async def fill(
    db: Database, conn: AsyncConnection, upto_id: int, since: datetime | None, offset: int
) -> None:
    """Give every row still at 0 with an id up to `upto_id` its counter (step 3)."""
    async with _step(db, conn) as step:
        unset = await _unset_ids(step, upto_id, since)
    first = True
    for row_id in unset:
        async with _step(db, conn) as step:
            previous = await _previous_counter(step, row_id, since)
            await step.execute(
                update(ticket_number_counter)
                .where(ticket_number_counter.c.id == row_id, ticket_number_counter.c.counter == 0)
                .values(counter=previous + (offset if first else 1))
            )
        first = False


async def is_empty(conn: AsyncConnection) -> bool:
    """True when ``ticket_number_counter`` has no row (AutoIncrement then seeds its counter)."""
    found = await conn.execute(select(ticket_number_counter.c.id).limit(1))
    return found.first() is None


async def last_ticket_number(conn: AsyncConnection) -> str | None:
    """The number of the ticket with the highest id, or None when that is ticket 1 (Znuny's
    welcome ticket) or there is none: where Znuny's AutoIncrement starts an empty counter."""
    row = (
        await conn.execute(select(ticket.c.id, ticket.c.tn).order_by(ticket.c.id.desc()).limit(1))
    ).first()
    if row is None or row.id == 1:
        return None
    return str(row.tn) if row.tn else None


@contextlib.asynccontextmanager
async def _step(db: Database, conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """A committed transaction of its own where there are side transactions, else `conn`."""
    if db.side_transactions:
        async with db.transaction() as side:
            yield side
    else:
        yield conn


async def _ids(conn: AsyncConnection, uids: Sequence[str]) -> dict[str, int]:
    rows = await conn.execute(
        select(ticket_number_counter.c.counter_uid, ticket_number_counter.c.id).where(
            ticket_number_counter.c.counter_uid.in_(list(uids))
        )
    )
    return {r.counter_uid: int(r.id) for r in rows}


async def _counters(conn: AsyncConnection, uids: Sequence[str]) -> dict[str, int]:
    rows = await conn.execute(
        select(ticket_number_counter.c.counter_uid, ticket_number_counter.c.counter).where(
            ticket_number_counter.c.counter_uid.in_(list(uids))
        )
    )
    return {r.counter_uid: int(r.counter) for r in rows}


async def _unset_ids(conn: AsyncConnection, upto_id: int, since: datetime | None) -> list[int]:
    query = select(ticket_number_counter.c.id).where(
        ticket_number_counter.c.counter == 0, ticket_number_counter.c.id <= upto_id
    )
    if since is not None:
        query = query.where(ticket_number_counter.c.create_time >= since)
    found = await conn.execute(query.order_by(ticket_number_counter.c.id))
    return [int(i) for i in found.scalars()]


async def _previous_counter(conn: AsyncConnection, row_id: int, since: datetime | None) -> int:
    """The counter of the row before `row_id` (0 when none; gaps in ids are tolerated)."""
    query = select(ticket_number_counter.c.counter).where(ticket_number_counter.c.id < row_id)
    if since is not None:
        query = query.where(ticket_number_counter.c.create_time >= since)
    found = (
        await conn.execute(query.order_by(ticket_number_counter.c.id.desc()).limit(1))
    ).scalar()
    return int(found or 0)
