"""Ticket numbers beside Znuny: pytrs allocates by Znuny's own counter protocol (Znuny 7.0,
``Kernel/System/Ticket/NumberBase.pm``), so pytrs and Znuny creating tickets in one database
never hand out one number twice, and each continues the other's rows.

Znuny's side is simulated here with plain SQL, step by step as its generator runs them (insert
a zero row, wait, fill the zero rows in id order, read its own row back), each statement
committed on its own as Znuny's DBI does, on connections of its own. On SQLite (no Znuny there,
one writer at a time) the protocol runs inside the caller's transaction; the interleavings that
need concurrent sessions run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from pytrs.config import Config
from pytrs.routing.ticket_number import TicketNumberGenerator, make_generator
from pytrs.schema import znuny_counter
from pytrs.schema.database import Database, create_database, utcnow
from pytrs.tickets.numbers import counter_for, initial_offset, new_numbers

from .conftest import engine_name, make_config
from .helpers import make_mail
from .tickets.conftest import open_desk

pytestmark = pytest.mark.znuny

POSTGRESQL = engine_name() == "postgresql"
needs_sessions = pytest.mark.skipif(not POSTGRESQL, reason="beside Znuny: PostgreSQL")


def generator(name: str = "DateChecksum") -> TicketNumberGenerator:
    return make_generator(name, "10", "Ticket#", True, 5)


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    # Beside Znuny needs Znuny's database; on SQLite the protocol still runs (in the caller's
    # transaction), with pytrs's own configuration.
    if not POSTGRESQL:
        return make_config(database_settings)
    return make_config({**database_settings, "mode": "znuny"})


async def rows(db: Database) -> list[tuple[int, int, str]]:
    async with db.connect() as conn:
        found = await conn.execute(
            text("SELECT id, counter, counter_uid FROM ticket_number_counter ORDER BY id")
        )
        return [(int(r[0]), int(r[1]), str(r[2])) for r in found]


async def pytrs_allocate(db: Database, count: int, *, daily: bool = True) -> list[int]:
    async with db.transaction() as conn:
        return await znuny_counter.allocate(conn, count, utcnow(), daily=daily)


# --- Znuny's generator, step by step in plain SQL ------------------------------------------


class ZnunySession:
    """One Znuny process creating a ticket number, its statements committed one by one."""

    def __init__(self, db: Database, *, daily: bool = True) -> None:
        self.db = db
        self.daily = daily
        self.uid = secrets.token_hex(16)
        self.now = utcnow()

    def _since(self) -> str:
        if not self.daily:
            return ""
        return " AND create_time >= :since"

    def _params(self) -> dict[str, Any]:
        return {"since": znuny_counter.midnight(self.now)} if self.daily else {}

    async def insert(self) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO ticket_number_counter (counter, counter_uid, create_time)"
                    " VALUES (0, :uid, :now)"
                ),
                {"uid": self.uid, "now": self.now},
            )

    async def fill(self, offset: int = 1) -> None:
        async with self.db.transaction() as conn:
            own = (
                await conn.execute(
                    text("SELECT id FROM ticket_number_counter WHERE counter_uid = :uid"),
                    {"uid": self.uid},
                )
            ).scalar_one()
        async with self.db.transaction() as conn:
            unset = (
                await conn.execute(
                    text(
                        "SELECT id FROM ticket_number_counter WHERE counter = 0 AND id <= :own"
                        + self._since()
                        + " ORDER BY id"
                    ),
                    {"own": own, **self._params()},
                )
            ).scalars()
            unset_ids = list(unset)
        first = True
        for row_id in unset_ids:
            async with self.db.transaction() as conn:
                previous = (
                    await conn.execute(
                        text(
                            "SELECT counter FROM ticket_number_counter WHERE id < :id"
                            + self._since()
                            + " ORDER BY id DESC LIMIT 1"
                        ),
                        {"id": row_id, **self._params()},
                    )
                ).scalar()
            async with self.db.transaction() as conn:
                await conn.execute(
                    text(
                        "UPDATE ticket_number_counter SET counter = :counter"
                        " WHERE id = :id AND counter = 0"
                    ),
                    {"counter": (previous or 0) + (offset if first else 1), "id": row_id},
                )
            first = False

    async def read(self) -> int:
        async with self.db.connect() as conn:
            return int(
                (
                    await conn.execute(
                        text("SELECT counter FROM ticket_number_counter WHERE counter_uid = :u"),
                        {"u": self.uid},
                    )
                ).scalar_one()
            )

    async def number(self) -> int:
        """TicketNumberCounterAdd as Znuny runs it, with its 50 ms wait."""
        await self.insert()
        await asyncio.sleep(znuny_counter.SETTLE_SECONDS)
        await self.fill()
        return await self.read()


async def seed(db: Database, counters: list[tuple[int, datetime]]) -> None:
    """Rows as Znuny leaves them: (counter, create_time), in id order."""
    async with db.transaction() as conn:
        for counter, created in counters:
            await conn.execute(
                text(
                    "INSERT INTO ticket_number_counter (counter, counter_uid, create_time)"
                    " VALUES (:c, :u, :t)"
                ),
                {"c": counter, "u": secrets.token_hex(16), "t": created},
            )


# --- the protocol --------------------------------------------------------------------------


async def test_one_row_per_number_filled_in_id_order(db: Database) -> None:
    first = await pytrs_allocate(db, 3)
    second = await pytrs_allocate(db, 2)
    assert first == [1, 2, 3]
    assert second == [4, 5]
    found = await rows(db)
    assert [counter for _, counter, _ in found] == [1, 2, 3, 4, 5]
    # Znuny's shape of a uid: 32 characters, unique.
    assert all(len(uid) == 32 for _, _, uid in found)
    assert len({uid for _, _, uid in found}) == 5


async def test_date_based_counters_continue_todays_rows_and_restart_daily(db: Database) -> None:
    now = utcnow()
    yesterday = znuny_counter.midnight(now) - timedelta(hours=1)
    # Yesterday ended at 41; today Znuny has numbered 1..7 so far.
    await seed(db, [(40, yesterday), (41, yesterday)] + [(n, now) for n in range(1, 8)])
    assert await pytrs_allocate(db, 2) == [8, 9]
    # AutoIncrement ignores the day: the previous row is the last one, whenever written.
    assert await pytrs_allocate(db, 1, daily=False) == [10]


async def test_a_fresh_day_starts_at_one(db: Database) -> None:
    yesterday = znuny_counter.midnight(utcnow()) - timedelta(minutes=5)
    await seed(db, [(987, yesterday)])
    assert await pytrs_allocate(db, 2) == [1, 2]


@needs_sessions
async def test_new_numbers_in_znuny_mode_are_znunys_datechecksum_numbers(
    db: Database, config: Config
) -> None:
    numbers = generator()
    now = utcnow()
    await seed(db, [(n, now) for n in range(1, 5)])
    async with db.transaction() as conn:
        allocate = counter_for(config.database.mode, conn, numbers, db)
        found = await new_numbers(conn, numbers, 2, allocate)
    today = now.date()
    assert found == [numbers.build(5, today), numbers.build(6, today)]
    assert found[0].startswith(f"{today:%Y%m%d}1000005")
    # pytrs's own counter row (one per scope) was not touched: only Znuny-shaped rows exist.
    assert [c for _, c, _ in await rows(db)] == [1, 2, 3, 4, 5, 6]


async def test_pytrs_mode_keeps_its_own_counter(db: Database, database_settings: Any) -> None:
    numbers = generator()
    mode = make_config(database_settings).database.mode
    async with db.transaction() as conn:
        found = await new_numbers(conn, numbers, 3, counter_for(mode, conn, numbers, db))
    assert len(set(found)) == 3
    assert [(c, uid.startswith("DateChecksum:")) for _, c, uid in await rows(db)] == [(3, True)]


def test_autoincrement_starts_past_the_last_ticket_as_znuny_does() -> None:
    auto = generator("AutoIncrement")
    assert initial_offset(auto, None) == 1
    assert initial_offset(auto, "1000123") == 124
    assert initial_offset(auto, "10000000") == 1  # nothing left after the system id and zeros
    # A number from a date-based generator before: start from 1.
    assert initial_offset(auto, "2026120710000017") == 1
    # Eight leading digits that are no date; no system id in front to strip.
    assert initial_offset(auto, "99999999123") == 99999999124


# --- concurrency and Znuny's interleavings (PostgreSQL) ---------------------------------------


@needs_sessions
async def test_concurrent_pytrs_allocations_never_repeat(config: Config, db: Database) -> None:
    engines = [create_database(config.database) for _ in range(5)]
    rng = random.Random(18)
    try:

        async def worker(engine: Database) -> list[int]:
            got: list[int] = []
            for _ in range(6):
                got += await pytrs_allocate(engine, rng.randint(1, 4))
            return got

        results = await asyncio.gather(*(worker(e) for e in engines))
    finally:
        for engine in engines:
            await engine.close()
    counters = [c for got in results for c in got]
    assert len(counters) == len(set(counters)), Counter(counters).most_common(3)
    # Every row got its value, and the values tile 1..N without a gap.
    assert sorted(c for _, c, _ in await rows(db)) == list(range(1, len(counters) + 1))


@needs_sessions
async def test_interleaved_with_znuny_sessions_never_collide(config: Config, db: Database) -> None:
    engines = [create_database(config.database) for _ in range(6)]
    try:

        async def znuny(engine: Database) -> list[int]:
            return [await ZnunySession(engine).number() for _ in range(5)]

        async def pytrs(engine: Database) -> list[int]:
            got: list[int] = []
            for count in (1, 3, 2, 1):
                got += await pytrs_allocate(engine, count)
            return got

        results = await asyncio.gather(
            *(znuny(e) for e in engines[:3]), *(pytrs(e) for e in engines[3:])
        )
    finally:
        for engine in engines:
            await engine.close()
    counters = [c for got in results for c in got]
    assert len(counters) == 3 * 5 + 3 * 7
    assert len(counters) == len(set(counters)), Counter(counters).most_common(3)
    assert sorted(c for _, c, _ in await rows(db)) == list(range(1, len(counters) + 1))


@needs_sessions
async def test_pytrs_fills_a_waiting_znuny_row_and_znuny_reads_it(
    config: Config, db: Database
) -> None:
    """Znuny inserted its row and is still in its 50 ms wait when pytrs allocates: pytrs fills
    Znuny's row first (it is older), Znuny's own fill then changes nothing, and Znuny reads the
    value pytrs wrote for it, which is not one of pytrs's."""
    other = create_database(config.database)
    try:
        await seed(db, [(6, utcnow())])
        session = ZnunySession(other)
        await session.insert()
        mine = await pytrs_allocate(db, 2)
        await session.fill()
        theirs = await session.read()
    finally:
        await other.close()
    assert theirs == 7
    assert mine == [8, 9]


@needs_sessions
async def test_znuny_fills_pytrs_rows_it_finds(config: Config, db: Database) -> None:
    """The other way round: pytrs's rows are inserted and committed, then Znuny's fill runs
    before pytrs's: Znuny numbers pytrs's rows (older ids) and its own after them; pytrs then
    reads what Znuny wrote for its rows."""
    other = create_database(config.database)
    try:
        now = utcnow()
        async with db.transaction() as conn:
            uids = [znuny_counter.new_uid() for _ in range(2)]
            for uid in uids:
                await conn.execute(
                    text(
                        "INSERT INTO ticket_number_counter (counter, counter_uid, create_time)"
                        " VALUES (0, :u, :t)"
                    ),
                    {"u": uid, "t": now},
                )
        session = ZnunySession(other)
        assert await session.number() == 3
        # pytrs's fill afterwards finds nothing left at 0 and keeps Znuny's values.
        async with db.transaction() as conn:
            last = max(i for i, _, uid in await rows(db) if uid in uids)
            await znuny_counter.fill(db, conn, last, znuny_counter.midnight(now), 1)
    finally:
        await other.close()
    assert [c for _, c, _ in await rows(db)] == [1, 2, 3]


# --- the choice from the configuration: ticket service and postmaster ----------------------


@needs_sessions
async def test_service_and_postmaster_beside_znuny_write_znuny_rows(
    database_settings: dict[str, Any],
) -> None:
    """`[database] mode = "znuny"` reaches both places that number tickets: a ticket made
    through the ticket service and one made from a mail by the postmaster each leave one
    Znuny-shaped row, continuing Znuny's counter of the day."""
    desk = await open_desk({**database_settings, "mode": "znuny"})
    try:
        now = utcnow()
        await seed(desk.db, [(n, now) for n in range(1, 4)])
        _, tn = await desk.ticket()
        assert tn == desk.service.numbers.build(4, now.date())
        await desk.deliver(make_mail(subject="New printer", message_id="<new@customer.example>"))
        async with desk.db.connect() as conn:
            numbers = set((await conn.execute(text("SELECT tn FROM ticket"))).scalars())
        assert desk.service.numbers.build(5, now.date()) in numbers
        found = await rows(desk.db)
        assert [c for _, c, _ in found] == [1, 2, 3, 4, 5]
        assert not any(uid.startswith("DateChecksum:") for _, _, uid in found)
    finally:
        await desk.db.close()
