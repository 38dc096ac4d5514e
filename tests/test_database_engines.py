"""The engine-specific helpers of schema/database.py behave alike on every engine: ON CONFLICT
(MariaDB: ON DUPLICATE KEY / INSERT IGNORE) and the transaction-scoped locks (MariaDB: named
locks released as their transaction ends). Run on SQLite, and on the server of
PYTRS_TEST_DATABASE_URL (PostgreSQL or MariaDB)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from pytrs.schema.database import Database, conflict_insert, lock_keys, utcnow
from pytrs.schema.tables import system_data, ticket_number_counter
from pytrs.schema.ticket_repo import allocate_counter_committed

from .conftest import engine_name

_SPACE = 0x74657374  # "test"


def _row(key: str, value: str) -> dict[str, object]:
    now = utcnow()
    return {"data_key": key, "data_value": value, "create_time": now, "create_by": 1,
            "change_time": now, "change_by": 1}  # fmt: skip


async def test_do_nothing_skips_a_duplicate_and_says_so(db: Database) -> None:
    async with db.transaction() as conn:
        insert = conflict_insert(conn, system_data).on_conflict_do_nothing(
            index_elements=["data_key"]
        )
        first = await conn.execute(insert, _row("engines.k", "first"))
        again = await conn.execute(insert, _row("engines.k", "second"))
        stored = await conn.scalar(
            select(system_data.c.data_value).where(system_data.c.data_key == "engines.k")
        )
    assert (first.rowcount, again.rowcount, stored) == (1, 0, "first")


async def test_do_update_reads_the_stored_row_and_the_proposed_one(db: Database) -> None:
    async with db.transaction() as conn:
        for value in ("one", "two"):
            insert = conflict_insert(conn, system_data).values(**_row("engines.u", value))
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["data_key"],
                    set_={"data_value": insert.excluded.data_value + "+"},
                )
            )
        stored = await conn.scalar(
            select(system_data.c.data_value).where(system_data.c.data_key == "engines.u")
        )
    assert stored == "two+"


async def test_counter_upsert_returns_each_reservation_once(db: Database) -> None:
    firsts = await asyncio.gather(*(allocate_counter_committed(db, "engines", 3) for _ in range(8)))
    assert sorted(firsts) == list(range(1, 24, 3))
    async with db.connect() as conn:
        counter = await conn.scalar(
            select(ticket_number_counter.c.counter).where(
                ticket_number_counter.c.counter_uid == "engines"
            )
        )
    assert counter == 24


@pytest.mark.skipif(engine_name() == "sqlite", reason="SQLite serialises writers at BEGIN")
@pytest.mark.parametrize("end", ["commit", "rollback"])
async def test_a_key_lock_is_held_until_its_transaction_ends(db: Database, end: str) -> None:
    async with db.engine.connect() as holder:
        await holder.begin()
        await lock_keys(holder, _SPACE, [7, 8])

        async def wait_for_it() -> None:
            async with db.transaction() as conn:
                await lock_keys(conn, _SPACE, [8])

        waiter = asyncio.create_task(wait_for_it())
        await asyncio.sleep(0.5)
        assert not waiter.done()  # held by the open transaction
        await (holder.commit() if end == "commit" else holder.rollback())
        await asyncio.wait_for(waiter, 10)
        # The connection (back to its pool, on MariaDB) holds nothing for its next user.
        async with db.transaction() as conn:
            await asyncio.wait_for(lock_keys(conn, _SPACE, [7]), 10)
