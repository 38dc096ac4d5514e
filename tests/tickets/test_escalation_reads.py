"""The escalation clocks people read (`tickets.escalation_reads`) and the list of escalating
tickets (`queries.list_tickets` with `escalating_by`), on both engines.

The deadlines are written into the ticket row here as the escalation index would have: this
file tests how they are read, sorted and counted down, not how they are computed.
"""

from __future__ import annotations

from typing import Any

from pytrs.tickets import queries
from pytrs.tickets.escalation_reads import KINDS, escalations, sla_names
from pytrs.tickets.queries import TicketFilter

from ..helpers import add_sla, set_deadlines
from .conftest import Desk

NOW = 1_800_000_000  # 2027-01-15 08:00 UTC


async def test_clocks_sla_and_pending(desk: Desk) -> None:
    gold = await add_sla(desk.db, "Gold")
    await add_sla(desk.db, "Retired", valid=False)
    first, first_tn = await desk.ticket("Printer on fire")
    second, _ = await desk.ticket("Toner empty")
    await set_deadlines(
        desk.db, first_tn, sla_id=gold, until_time=NOW + 7200,
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
        _id, made[name] = await desk.ticket(name)
    await set_deadlines(desk.db, made["later"], escalation_update_time=NOW + 2 * 3600)
    await set_deadlines(desk.db, made["escalated"], escalation_response_time=NOW - 86400)
    await set_deadlines(desk.db, made["soon"], escalation_solution_time=NOW + 1800)
    await set_deadlines(desk.db, made["just"], escalation_response_time=NOW + 3600)  # the edge
    await set_deadlines(desk.db, made["next-minute"], escalation_response_time=NOW + 60)

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
