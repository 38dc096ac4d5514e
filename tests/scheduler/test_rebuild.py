"""The rebuild job: after a change of queue targets (a newer ESCALATION generation) the open
tickets' clocks are recomputed in chunks and the generation recorded; closed tickets are left
alone; only one daemon rebuilds at a time (PostgreSQL's session lock)."""

from __future__ import annotations

from sqlalchemy import select

from pytrs.scheduler.rebuild import EscalationRebuild
from pytrs.schema import escalation_due
from pytrs.schema.database import Database
from pytrs.schema.tables import system_data
from pytrs.tickets.service import TicketService

from ..conftest import engine_name
from .conftest import clock_row, epoch, new_ticket, set_state, set_targets


async def _recorded(db: Database) -> str | None:
    async with db.connect() as conn:
        return await conn.scalar(
            select(system_data.c.data_value).where(
                system_data.c.data_key == escalation_due.REBUILT_KEY
            )
        )


async def test_a_target_change_recomputes_the_open_tickets_once(
    provisioned: Database, service: TicketService
) -> None:
    rebuild = EscalationRebuild(provisioned, chunk_size=2)
    assert await rebuild.run() is not None  # the generation provisioning left: recorded
    assert await rebuild.run() is None
    ids = [await new_ticket(provisioned, service) for _ in range(5)]
    closed = await new_ticket(provisioned, service)
    await set_state(provisioned, service, closed, "closed successful")
    created = {}
    for ticket_id in ids:
        row = await clock_row(provisioned, ticket_id)
        assert row is not None and row["response_time"] - row["response_notify"] == 1800
        created[ticket_id] = row["response_time"] - 3600

    await set_targets(provisioned, "Support", response=120)
    async with provisioned.connect() as conn:
        current, done = await escalation_due.generation_state(conn)
    assert current > done
    changed = await rebuild.run(now=epoch())
    assert changed == len(ids)
    for ticket_id in ids:
        row = await clock_row(provisioned, ticket_id)
        assert row is not None
        assert row["response_time"] == created[ticket_id] + 7200
        assert row["response_notify"] == created[ticket_id] + 3600
        assert row["next_due"] == row["response_notify"]
    assert await clock_row(provisioned, closed) is None
    assert await _recorded(provisioned) == str(current)
    assert await rebuild.run() is None  # nothing new since


async def test_only_one_daemon_rebuilds_at_a_time(
    provisioned: Database, service: TicketService
) -> None:
    rebuild = EscalationRebuild(provisioned)
    await new_ticket(provisioned, service)
    await set_targets(provisioned, "Support", response=120)
    async with escalation_due.rebuild_lock(provisioned) as held:
        # Another daemon holds the rebuild lock (PostgreSQL; SQLite serialises writers and
        # has no such lock, so both would rebuild there, one after the other).
        assert held
        if engine_name() == "postgresql":
            assert await rebuild.run() is None
            async with provisioned.connect() as conn:
                current, done = await escalation_due.generation_state(conn)
            assert current > done
    assert await rebuild.run() is not None
    async with provisioned.connect() as conn:
        current, done = await escalation_due.generation_state(conn)
    assert current == done
