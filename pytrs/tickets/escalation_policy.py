"""The escalation policy: every queue's and SLA's targets and the business calendars, as the
database holds them, cached per process.

Place in the flow: read by the escalation index (`tickets.escalation_index`) on every flush
that touches a ticket and by the scheduler. Provisioning writes the `queue`, `sla` and
`business_calendar` rows and bumps the ESCALATION generation in the same transaction; the
cache is per database engine (a process may open several) and is read again when that
generation moves.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Row, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.calendars import CalendarError, WorkingCalendar, always, calendar_from_definition
from pytrs.schema import generations
from pytrs.schema.tables import TicketState, TicketStateType, business_calendar, queue, sla
from pytrs.tickets.escalation import Targets

log = logging.getLogger(__name__)

_state = cast(Table, TicketState.__table__)
_state_type = cast(Table, TicketStateType.__table__)


def _calendar(name: str, definition: str) -> WorkingCalendar | None:
    """The stored calendar `name`; None (with a warning) when its definition is unusable: a
    broken calendar must not stop mail, and `pytrs config check` names its problem."""
    try:
        return calendar_from_definition(name, json.loads(definition))
    except (CalendarError, ValueError, TypeError) as exc:
        log.warning("business calendar %r unusable, counted as 24/7: %s", name, exc)
        return None


@dataclass(frozen=True)
class EscalationPolicy:
    """Every queue's and SLA's targets, the business calendars by name and the state types,
    as of ESCALATION generation `generation`."""

    generation: int
    queues: Mapping[int, Targets]
    slas: Mapping[int, Targets]
    calendars: Mapping[str, WorkingCalendar]
    default: WorkingCalendar
    state_types: Mapping[int, str]
    closed_states: frozenset[int] = frozenset()

    @property
    def off(self) -> bool:
        """No queue and no SLA has any target: no deadline can be set."""
        return not any(self.queues.values()) and not any(self.slas.values())

    @property
    def solution(self) -> bool:
        return any(t.solution for t in (*self.queues.values(), *self.slas.values()))

    def _raw(self, queue_id: int, sla_id: int | None) -> Targets | None:
        # A ticket's SLA overrides its queue as a whole (Znuny's TicketEscalationPreferences).
        if sla_id and sla_id in self.slas:
            return self.slas[sla_id]
        return self.queues.get(queue_id)

    def targets(self, queue_id: int, sla_id: int | None) -> Targets | None:
        """The targets of a ticket in `queue_id` with `sla_id`; None when it has none."""
        found = self._raw(queue_id, sla_id)
        return found if found else None

    def calendar(self, name: str | None) -> WorkingCalendar:
        """Business calendar `name`; "" or unknown: the default, round the clock (in UTC:
        counting every second, the time zone changes nothing)."""
        return self.calendars.get(name or "", self.default)

    def calendar_for(self, queue_id: int, sla_id: int | None) -> WorkingCalendar:
        found = self._raw(queue_id, sla_id)
        return self.calendar(found.calendar if found else "")


# Per database engine (tests and tools open several in one process).
_CACHE: weakref.WeakKeyDictionary[Engine, EscalationPolicy] = weakref.WeakKeyDictionary()


async def load_policy(conn: AsyncConnection) -> EscalationPolicy:
    """The current policy: the cached one while the ESCALATION generation stands."""
    generation = int(await conn.scalar(select(generations.value(generations.ESCALATION))) or 0)
    return await policy_at(conn, generation)


async def policy_at(
    conn: AsyncConnection, generation: int, *, fresh: bool = False
) -> EscalationPolicy:
    """The policy as of ESCALATION generation `generation` (read again when `fresh`)."""
    cached = _CACHE.get(conn.sync_engine)
    if cached is not None and cached.generation == generation and not fresh:
        return cached
    found = await _read_policy(conn, generation)
    _CACHE[conn.sync_engine] = found
    return found


async def _read_policy(conn: AsyncConnection, generation: int) -> EscalationPolicy:
    queues = {
        int(r.id): _targets(r, r.first_response_time) for r in await conn.execute(select(queue))
    }
    slas = {int(r.id): _targets(r, r.first_response_time) for r in await conn.execute(select(sla))}
    calendars = {
        r.name: found
        for r in await conn.execute(select(business_calendar))
        if (found := _calendar(r.name, r.definition)) is not None
    }
    states = await conn.execute(
        select(_state.c.id, _state_type.c.name).join(
            _state_type, _state_type.c.id == _state.c.type_id
        )
    )
    state_types = {int(r.id): r.name for r in states}
    return EscalationPolicy(
        generation, queues, slas, calendars, always(), state_types,
        frozenset(i for i, kind in state_types.items() if kind == "closed"),
    )  # fmt: skip


def _targets(r: Row[Any], response: int | None) -> Targets:
    return Targets(
        calendar=r.calendar_name or "", response=response or 0,
        response_notify=r.first_response_notify or 0, update=r.update_time or 0,
        update_notify=r.update_notify or 0, solution=r.solution_time or 0,
        solution_notify=r.solution_notify or 0,
    )  # fmt: skip


# --- recomputing ------------------------------------------------------------------------


def cached(conn: AsyncConnection) -> EscalationPolicy | None:
    """The policy this process last read from `conn`'s database (None: none yet)."""
    return _CACHE.get(conn.sync_engine)
