"""The schema: migrations and models agree, Znuny's seed rows, counters, provisioning."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select, text

from pytrs.provisioning import provision
from pytrs.schema import migrate, ticket_repo
from pytrs.schema.database import refresh_planner_statistics
from pytrs.schema.tables import queue, system_address
from pytrs.vocabulary import znuny

from .conftest import make_config


async def test_models_and_migrations_agree(db: Any) -> None:
    assert await migrate.diff_models(db) == []
    at_head, current, head = await migrate.is_at_head(db)
    assert at_head and current == head == migrate.head_revision()


def test_the_head_every_command_checks_is_alembics() -> None:
    """HEAD_REVISION spares each command Alembic's import: a new migration must move it."""
    assert migrate.alembic_head_revision() == migrate.HEAD_REVISION


async def test_znuny_seed_rows(db: Any) -> None:
    async with db.connect() as conn:
        states = dict((await conn.execute(text(
            "SELECT s.name, t.name FROM ticket_state s JOIN ticket_state_type t ON t.id = s.type_id"
        ))).all())  # fmt: skip
        priorities = (
            await conn.execute(text("SELECT id, name FROM ticket_priority ORDER BY id"))
        ).all()
        senders = (
            await conn.execute(text("SELECT id, name FROM article_sender_type ORDER BY id"))
        ).all()
        history_types = set(
            (await conn.execute(text("SELECT name FROM ticket_history_type"))).scalars()
        )
        queues = (await conn.execute(text("SELECT id, name FROM queue ORDER BY id"))).all()
    assert states["new"] == "new" and states["open"] == "open"
    assert states["closed successful"] == "closed" and states["merged"] == "merged"
    assert states["pending auto close+"] == "pending auto"
    assert [tuple(r) for r in priorities][2] == (3, "3 normal")
    assert [tuple(r) for r in senders] == [(1, "agent"), (2, "system"), (3, "customer")]
    assert {"NewTicket", "FollowUp", "EmailCustomer", "StateUpdate", "Merged"} <= history_types
    assert [tuple(r) for r in queues] == [(1, "Postmaster"), (2, "Raw"), (3, "Junk"), (4, "Misc")]
    assert znuny.history_type_id("EmailCustomer") == 12


async def test_serial_ids_continue_after_seed_rows(db: Any, config: Any) -> None:
    await provision(db, config)  # inserts queues Support/Sales/Billing after the seeded four
    async with db.connect() as conn:
        ids = dict((await conn.execute(select(queue.c.name, queue.c.id))).all())
    assert ids["Support"] > 4


async def test_provisioning_syncs_and_retires(db: Any, database_settings: dict[str, Any]) -> None:
    await provision(db, make_config(database_settings))
    smaller = make_config(
        database_settings,
        queues=[{"name": "Support", "follow_up": "reject"}],
        system_addresses=[{"address": "support@example.com", "queue": "Support"}],
    )
    await provision(db, smaller)
    async with db.connect() as conn:
        addresses = dict(
            (await conn.execute(select(system_address.c.value0, system_address.c.valid_id))).all()
        )
        queues = {r.name: r for r in await conn.execute(select(queue))}
    assert addresses == {"support@example.com": 1, "sales@example.com": 2, "billing@example.com": 2}
    assert queues["Support"].follow_up_id == 2 and queues["Sales"].valid_id == 2
    assert queues["Raw"].valid_id == 1  # shipped rows are never retired


async def test_counter_allocation_is_unique_under_concurrency(db: Any) -> None:
    async def allocate(n: int) -> list[int]:
        got = []
        for _ in range(n):
            async with db.transaction() as conn:
                first = await ticket_repo.allocate_counter(conn, "DateChecksum:20261125", 3)
            got.extend(range(first, first + 3))
        return got

    results = await asyncio.gather(*(allocate(10) for _ in range(4)))
    values = [v for r in results for v in r]
    assert sorted(values) == list(range(1, 121))


async def test_planner_statistics_are_kept(db: Any) -> None:
    """SQLite keeps no planner statistics by itself (the queue view's plans need them); the
    daemon refreshes them as it starts, and they are committed. PostgreSQL: nothing to do."""
    await refresh_planner_statistics(db)
    if not db.is_sqlite:
        return
    async with db.connect() as conn:
        indexed = set((await conn.execute(text("SELECT tbl FROM sqlite_stat1"))).scalars())
    assert {"queue", "ticket_state"} <= indexed  # tables with rows (the seed) have statistics
