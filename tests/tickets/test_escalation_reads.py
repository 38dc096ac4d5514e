"""The escalation clocks people read (`tickets.escalation_reads`) and the list of escalating
tickets (`queries.list_tickets` with `escalating_by`), on both engines.

The deadlines are written into the ticket row here as the escalation index would have: this
file tests how they are read, sorted and counted down, not how they are computed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, update

from pytrs.schema.database import utcnow
from pytrs.schema.tables import sla, ticket
from pytrs.tickets import queries
from pytrs.tickets.escalation_reads import KINDS, escalations, sla_names
from pytrs.tickets.queries import TicketFilter

from .conftest import Desk

NOW = 1_800_000_000  # 2027-01-15 08:00 UTC


async def add_sla(desk: Desk, name: str, valid: bool = True) -> int:
    async with desk.db.transaction() as conn:
        made = await conn.execute(
            insert(sla).values(
                name=name, calendar_name="", first_response_time=60, update_time=0,
                solution_time=0, valid_id=1 if valid else 2, create_time=utcnow(),
                change_time=utcnow(), create_by=1, change_by=1,
            )
        )  # fmt: skip
        return int(made.inserted_primary_key[0])


async def set_times(desk: Desk, ticket_id: int, **values: Any) -> None:
    """Deadlines (and the SLA, the pending time) as the escalation index would store them."""
    deadlines = [values.get(f"escalation_{kind}_time", 0) for kind in KINDS]
    earliest = min((d for d in deadlines if d), default=0)
    async with desk.db.transaction() as conn:
        await conn.execute(
            update(ticket)
            .where(ticket.c.id == ticket_id)
            .values(escalation_time=earliest, **values)
        )


async def test_clocks_sla_and_pending(desk: Desk) -> None:
    gold = await add_sla(desk, "Gold")
    await add_sla(desk, "Retired", valid=False)
    first, _ = await desk.ticket("Printer on fire")
    second, _ = await desk.ticket("Toner empty")
    await set_times(
        desk, first, sla_id=gold, until_time=NOW + 7200,
        escalation_response_time=NOW - 600,  # escalated ten minutes ago
        escalation_solution_time=NOW + 3 * 3600,
    )  # fmt: skip
    async with desk.db.connect() as conn:
        found = await escalations(conn, [first, second, 999_999], NOW)
        assert await sla_names(conn) == ["Gold"]
    assert sorted(found) == [first, second]
    clocks = found[first]
    assert clocks.sla == "Gold" and clocks.pending_until == NOW + 7200
    response, update_, solution = clocks.clocks
    assert [c.kind for c in clocks.clocks] == list(KINDS)
    assert (response.deadline, response.seconds_left, response.escalated) == (NOW - 600, -600, True)
    assert (update_.deadline, update_.seconds_left, update_.escalated) == (0, 0, False)
    assert (solution.seconds_left, solution.escalated) == (3 * 3600, False)
    assert clocks.escalated and clocks.soonest == response
    # A ticket without deadlines, SLA or pending time.
    plain = found[second]
    assert plain.sla == "" and plain.pending_until == 0
    assert not plain.escalated and plain.soonest is None
    # A deadline reached this very second counts as escalated, with no time left.
    async with desk.db.connect() as conn:
        at_deadline = (await escalations(conn, [first], NOW - 600))[first]
    assert at_deadline.clocks[0].escalated and at_deadline.clocks[0].seconds_left == 0


async def test_escalating_list_soonest_first_and_paged(desk: Desk) -> None:
    made = {}
    for name in ("later", "escalated", "soon", "none", "just", "next-minute"):
        made[name], _ = await desk.ticket(name)
    await set_times(desk, made["later"], escalation_update_time=NOW + 2 * 3600)
    await set_times(desk, made["escalated"], escalation_response_time=NOW - 86400)
    await set_times(desk, made["soon"], escalation_solution_time=NOW + 1800)
    await set_times(desk, made["just"], escalation_response_time=NOW + 3600)  # the edge
    await set_times(desk, made["next-minute"], escalation_response_time=NOW + 60)

    async def listed(limit: int = 10, before: int | None = None, **where: Any) -> Any:
        async with desk.db.connect() as conn:
            page = await queries.list_tickets(
                conn, TicketFilter(escalating_by=NOW + 3600, **where), limit=limit, before=before
            )
        return [row.title for row in page.rows], page.next_before

    everything = ["escalated", "next-minute", "soon", "just"]
    assert await listed() == (everything, None)
    assert await listed(search="soon") == (["soon"], None)
    # Pages continue after the last ticket shown, in deadline order.
    titles, after = await listed(limit=2)
    assert titles == everything[:2] and after is not None
    async with desk.db.connect() as conn:
        after_id = await queries.ticket_id(conn, after)
    assert await listed(limit=2, before=after_id) == (everything[2:], None)
