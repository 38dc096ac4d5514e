"""The escalation clocks people read (`tickets.escalation_reads`) and the list of escalating
tickets (`queries.list_tickets` with `escalating_by`), on both engines.

The deadlines are written into the ticket row here as the escalation index would have: this
file tests how they are read, sorted and counted down, not how they are computed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update

from pytrs.schema import generations
from pytrs.schema.database import utcnow
from pytrs.schema.tables import business_calendar, queue
from pytrs.tickets import queries
from pytrs.tickets.escalation_reads import KINDS, escalations, sla_names
from pytrs.tickets.queries import TicketFilter

from ..helpers import add_sla, set_deadlines
from .conftest import Desk

NOW = 1_800_000_000  # 2027-01-15 08:00 UTC
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")


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


def berlin(day: int, hour: int) -> int:
    """Epoch seconds of January `day`, 2027, `hour`:00 in Berlin (the 15th is a Friday)."""
    return int(datetime(2027, 1, day, hour, tzinfo=ZoneInfo("Europe/Berlin")).timestamp())


async def test_time_left_counts_the_queue_calendar(desk: Desk) -> None:
    """Office hours Monday to Friday, 9 to 17 in Berlin, on queue Support (with a first
    response target, without which the queue's calendar counts for nothing): the time left
    skips the weekend; past a deadline, only working time counts as overdue."""
    office = {"timezone": "Europe/Berlin", "hours": {day: ["09:00-17:00"] for day in WORKDAYS}}
    async with desk.db.transaction() as conn:
        await conn.execute(
            insert(business_calendar).values(
                name="Office", definition=json.dumps(office), change_time=utcnow()
            )
        )
        await conn.execute(
            update(queue)
            .where(queue.c.name == "Support")
            .values(calendar_name="Office", first_response_time=240)
        )
        await generations.bump(conn, generations.ESCALATION)
    ticket_id, tn = await desk.ticket("Printer on fire")
    await set_deadlines(desk.db, tn, escalation_response_time=berlin(18, 10))  # Monday 10:00

    async def left(now: int) -> tuple[int, bool]:
        async with desk.db.connect() as conn:
            [clock, *_] = (await escalations(conn, [ticket_id], now))[ticket_id].clocks
        return clock.seconds_left, clock.escalated

    assert await left(berlin(15, 16)) == (2 * 3600, False)  # Friday 16-17, Monday 9-10
    assert await left(berlin(16, 12)) == (3600, False)  # Saturday: Monday 9-10
    assert await left(berlin(18, 11)) == (-3600, True)
    # Escalated at Friday 17:00, read on Saturday: no working time since, yet escalated.
    await set_deadlines(desk.db, tn, escalation_response_time=berlin(15, 17))
    assert await left(berlin(16, 12)) == (0, True)
