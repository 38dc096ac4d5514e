"""Escalation clocks for people: what the command line, the web view and the API show of a
ticket's deadlines.

Place in the flow: read-only, beside the ticket service. The deadlines themselves are the
ticket's `escalation_*_time` columns, which the escalation index keeps current in every
transaction that changes a ticket; this module only reads them, with the ticket's SLA name and
pending time, and counts the working time left on the calendar the escalation policy gives the
ticket (its SLA's, else its queue's, else 24/7). One query for any number of tickets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.calendars import WorkingCalendar
from pytrs.schema.tables import sla, ticket
from pytrs.tickets.escalation import KINDS
from pytrs.tickets.escalation_index import EscalationPolicy, load_policy

# Within this many seconds of a deadline a ticket counts as escalating (`--escalating`).
SOON_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Clock:
    """One kind's deadline as people read it."""

    kind: str  # "response" | "update" | "solution"
    deadline: int  # epoch seconds; 0 = no deadline
    seconds_left: int  # working seconds until the deadline; negative past it; 0 without one
    escalated: bool  # the deadline has passed


@dataclass(frozen=True, slots=True)
class TicketClocks:
    """A ticket's clocks (always the three KINDS, in order), its SLA and its pending time."""

    ticket_id: int
    sla: str  # the SLA's name; "" when the ticket has none
    pending_until: int  # epoch seconds; 0 = none
    clocks: tuple[Clock, ...]

    @property
    def escalated(self) -> bool:
        return any(clock.escalated for clock in self.clocks)

    @property
    def soonest(self) -> Clock | None:
        """The clock with the earliest deadline (the ticket's `escalation_time`), if any."""
        running = [clock for clock in self.clocks if clock.deadline]
        return min(running, key=lambda clock: clock.deadline) if running else None


@dataclass(frozen=True, slots=True)
class TicketTimes:
    """What the clocks are computed from: a ticket row's columns."""

    ticket_id: int
    queue_id: int
    sla_id: int | None
    sla: str
    response: int
    update: int
    solution: int
    until_time: int


def left(calendar: WorkingCalendar, deadline: int, now: int) -> int:
    """Working seconds from `now` to `deadline`, negative (working time since) once past."""
    if deadline >= now:
        return calendar.working_between(now, deadline)
    return -calendar.working_between(deadline, now)


def clocks_of(times: TicketTimes, policy: EscalationPolicy, now: int) -> TicketClocks:
    calendar = policy.calendar_for(times.queue_id, times.sla_id)
    deadlines = (times.response, times.update, times.solution)
    clocks = tuple(
        Clock(
            kind=kind,
            deadline=deadline,
            seconds_left=left(calendar, deadline, now) if deadline else 0,
            escalated=bool(deadline) and deadline <= now,
        )
        for kind, deadline in zip(KINDS, deadlines, strict=True)
    )
    return TicketClocks(times.ticket_id, times.sla, times.until_time, clocks)


async def escalations(
    conn: AsyncConnection, ticket_ids: Iterable[int], now: int
) -> dict[int, TicketClocks]:
    """The clocks of the tickets `ticket_ids` (those that exist), by id, at `now`."""
    wanted = sorted(set(ticket_ids))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(
            ticket.c.id,
            ticket.c.queue_id,
            ticket.c.sla_id,
            sla.c.name.label("sla"),
            ticket.c.escalation_response_time,
            ticket.c.escalation_update_time,
            ticket.c.escalation_solution_time,
            ticket.c.until_time,
        )
        .outerjoin(sla, sla.c.id == ticket.c.sla_id)
        .where(ticket.c.id.in_(wanted))
    )
    found = [times_of(r) for r in rows]
    policy = await load_policy(conn)
    return {times.ticket_id: clocks_of(times, policy, now) for times in found}


def times_of(r: Any) -> TicketTimes:
    """A row with the columns `escalations` selects as TicketTimes."""
    return TicketTimes(
        ticket_id=int(r.id),
        queue_id=int(r.queue_id),
        sla_id=r.sla_id,
        sla=r.sla or "",
        response=int(r.escalation_response_time or 0),
        update=int(r.escalation_update_time or 0),
        solution=int(r.escalation_solution_time or 0),
        until_time=int(r.until_time or 0),
    )


async def sla_names(conn: AsyncConnection) -> Sequence[str]:
    """The valid SLAs' names (what a form offers), by name."""
    rows = await conn.execute(select(sla.c.name).where(sla.c.valid_id == 1).order_by(sla.c.name))
    return list(rows.scalars())
