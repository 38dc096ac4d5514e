"""The escalation index: each ticket's `escalation_*` columns and clock row, kept current in
the transaction that changes the ticket.

Place in the flow: `tickets.writes.Writes.flush` calls `recompute` for every ticket a flush
touches (mail path, ticket service, scheduler alike), before the ticket rows are updated; the
scheduler calls `rebuild` after a calendar, SLA or queue target changed. What the clocks mean
is `tickets.escalation` (pure); this module reads the facts they depend on in a few batched
queries and writes what changed: the ticket columns (through the flush), the
`ticket_escalation` rows, and the `Escalation…Stop` history.

The policy (queue and SLA targets, business calendars, state types) is cached per process and
database, and reloaded when the ESCALATION generation moves. With no target anywhere, no clock
row and no pending time among the touched tickets, a flush costs one small query.

Lock order: the callers hold the tickets' row locks (`get(lock=True)`, the postmaster's loads,
tickets inserted in the transaction); clock rows are only written after, never locked first.
"""

from __future__ import annotations

import json
import weakref
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Row, Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import generations
from pytrs.schema.database import for_update
from pytrs.schema.tables import (
    TicketState,
    TicketStateType,
    article,
    business_calendar,
    queue,
    sla,
    ticket,
    ticket_escalation,
    ticket_history,
)
from pytrs.tickets import escalation, history
from pytrs.tickets.escalation import (
    COLUMNS,
    DONE_TYPES,
    Clock,
    ClockFacts,
    Recomputed,
    Targets,
    WorkingTime,
    history_type,
    update_anchor,
)
from pytrs.tickets.model import HistoryEntry
from pytrs.tickets.rows import epoch, history_row
from pytrs.vocabulary import znuny

_state = cast(Table, TicketState.__table__)
_state_type = cast(Table, TicketStateType.__table__)
_SENDERS = {znuny.SENDER_AGENT: "agent", znuny.SENDER_CUSTOMER: "customer"}
_CLOCK_FIELDS = tuple(
    c.name for c in ticket_escalation.c if c.name not in ("ticket_id", "next_due")
)


class _AllWeek:
    """Stand-in for `pytrs.calendars.always()` until that package lands: every second is
    working time."""

    def __init__(self, timezone: str = "UTC", name: str = "") -> None:
        self.name, self.timezone = name, timezone

    def add_working(self, start: int, seconds: int) -> int:
        return start + seconds


def _calendar(name: str, definition: Mapping[str, Any]) -> WorkingTime:
    return _AllWeek(str(definition.get("timezone", "UTC")), name)


@dataclass(frozen=True)
class EscalationPolicy:
    """Every queue's and SLA's targets, the business calendars by name and the state types,
    as of ESCALATION generation `generation`."""

    generation: int
    queues: Mapping[int, Targets]
    slas: Mapping[int, Targets]
    calendars: Mapping[str, WorkingTime]
    default: WorkingTime
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

    def calendar(self, name: str | None) -> WorkingTime:
        """Business calendar `name`; "" or unknown: the default (24/7)."""
        return self.calendars.get(name or "", self.default)

    def calendar_for(self, queue_id: int, sla_id: int | None) -> WorkingTime:
        found = self._raw(queue_id, sla_id)
        return self.calendar(found.calendar if found else "")


# Per database engine (tests and tools open several in one process).
_CACHE: weakref.WeakKeyDictionary[Engine, EscalationPolicy] = weakref.WeakKeyDictionary()


async def load_policy(conn: AsyncConnection, timezone: str = "UTC") -> EscalationPolicy:
    """The current policy: the cached one while the ESCALATION generation stands."""
    generation = int(await conn.scalar(select(generations.value(generations.ESCALATION))) or 0)
    return await _policy(conn, generation, timezone)


async def _policy(
    conn: AsyncConnection, generation: int, timezone: str = "UTC", *, fresh: bool = False
) -> EscalationPolicy:
    cached = _CACHE.get(conn.sync_engine)
    if cached is not None and cached.generation == generation and not fresh:
        return cached
    found = await _read_policy(conn, generation, timezone)
    _CACHE[conn.sync_engine] = found
    return found


async def _read_policy(conn: AsyncConnection, generation: int, timezone: str) -> EscalationPolicy:
    queues = {
        int(r.id): _targets(r, r.first_response_time) for r in await conn.execute(select(queue))
    }
    slas = {int(r.id): _targets(r, r.first_response_time) for r in await conn.execute(select(sla))}
    calendars = {
        r.name: _calendar(r.name, json.loads(r.definition))
        for r in await conn.execute(select(business_calendar))
    }
    states = await conn.execute(
        select(_state.c.id, _state_type.c.name).join(
            _state_type, _state_type.c.id == _state.c.type_id
        )
    )
    state_types = {int(r.id): r.name for r in states}
    return EscalationPolicy(
        generation, queues, slas, calendars, _AllWeek(timezone), state_types,
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


@dataclass
class Outcome:
    """What a recompute changed: ticket columns per ticket (for the caller to write), the
    `…Stop` history entries, and how many tickets changed at all."""

    columns: dict[int, dict[str, int]] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    changed: int = 0


async def recompute(
    conn: AsyncConnection, ticket_ids: Collection[int],
    pending: Mapping[int, Mapping[str, Any]] | None = None,
) -> Outcome:  # fmt: skip
    """Recompute the clocks of `ticket_ids` (whose rows the caller has locked), with the
    column values `pending` is about to write to them laid over what the rows hold; writes
    the clock rows and returns the ticket columns and history to write."""
    if not ticket_ids:
        return Outcome()
    pending = pending or {}
    ids = sorted(ticket_ids)
    generation, clocks_exist, pending_exists = (
        await conn.execute(
            select(
                generations.value(generations.ESCALATION),
                select(ticket_escalation.c.ticket_id).exists(),
                select(ticket.c.id).where(ticket.c.id.in_(ids), ticket.c.until_time != 0).exists(),
            )
        )
    ).one()
    policy = await _policy(conn, int(generation or 0))
    if (
        policy.off and not clocks_exist and not pending_exists
        and not any(v.get("until_time") for v in pending.values())
    ):  # fmt: skip
        return Outcome()
    return await _recompute(conn, policy, ids, pending)


async def rebuild(conn: AsyncConnection, ticket_ids: Sequence[int], now: int) -> int:
    """Recompute `ticket_ids` after their policy changed (a calendar, an SLA or a queue's
    targets): locks the tickets, writes their columns, clocks and history (at `now`);
    returns how many changed."""
    if not ticket_ids:
        return 0
    ids = sorted(set(ticket_ids))
    locked = for_update(conn, select(ticket.c.id).where(ticket.c.id.in_(ids)).order_by(ticket.c.id),
                        of=ticket, key_share=True)  # fmt: skip
    ids = [int(i) for i in (await conn.execute(locked)).scalars()]
    policy = await load_policy(conn)
    found = await _recompute(conn, policy, ids, {})
    await _write_columns(conn, found.columns)
    if found.history:
        at = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
        await conn.execute(insert(ticket_history), [history_row(e, at) for e in found.history])
    return found.changed


async def _write_columns(conn: AsyncConnection, columns: Mapping[int, Mapping[str, int]]) -> None:
    """The changed `escalation_*` columns, one executemany per set of columns (`change_time`
    stays: a policy change is no change of the ticket)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for ticket_id in sorted(columns):
        values = columns[ticket_id]
        groups[tuple(sorted(values))].append(
            {"t_id": ticket_id, **{f"t_{k}": v for k, v in values.items()}}
        )
    for names, params in groups.items():
        await conn.execute(
            update(ticket)
            .where(ticket.c.id == bindparam("t_id"))
            .values({c: bindparam(f"t_{c}") for c in names}),
            params,
        )


async def _recompute(
    conn: AsyncConnection, policy: EscalationPolicy, ids: list[int],
    pending: Mapping[int, Mapping[str, Any]],
) -> Outcome:  # fmt: skip
    tickets = await _load(conn, ids)
    if any(_state_id(r, pending) not in policy.state_types for r in tickets):
        policy = await _policy(conn, policy.generation, fresh=True)  # a state added since
    facts = {r.id: _facts(r, pending.get(r.id, {}), policy) for r in tickets}
    wanted = [
        f for f in facts.values()
        if f.state_type not in DONE_TYPES and policy.targets(f.queue_id, f.sla_id)
    ]  # fmt: skip
    await _read_articles(conn, wanted, facts)
    await _read_closed(conn, policy, tickets, wanted, facts)
    outcome = Outcome()
    writes = _ClockWrites()
    for r in tickets:
        f = facts[r.id]
        old = _clock(r)
        found = escalation.recompute(
            f, policy.targets(f.queue_id, f.sla_id), policy.calendar_for(f.queue_id, f.sla_id),
            old,
        )  # fmt: skip
        if _record(r, old, found, pending.get(r.id, {}), outcome, writes):
            outcome.changed += 1
    await writes.flush(conn)
    return outcome


def _record(
    r: Row[Any], old: Clock | None, found: Recomputed, pending: Mapping[str, Any],
    outcome: Outcome, writes: _ClockWrites,
) -> bool:  # fmt: skip
    """Note what changed for ticket `r`; True when anything did."""
    columns = {c: v for c, v in found.columns.items() if getattr(r, c) != v}
    if columns:
        outcome.columns[r.id] = columns
    for kind in found.stopped:
        deadline = old.deadline(kind) if old else 0
        name = history.escalation(history_type(kind, "stop"), deadline)
        outcome.history.append(_entry(r, pending, *name))
    if found.clock == old:
        return bool(columns or found.stopped)
    if found.clock is None:
        writes.deleted.append(r.id)
    elif old is None:
        writes.inserted.append(found.clock)
    else:
        writes.updated.append(found.clock)
    return True


def _entry(r: Row[Any], pending: Mapping[str, Any], kind: str, name: str) -> HistoryEntry:
    return HistoryEntry(
        kind, name, r.id, pending.get("queue_id", r.queue_id),
        pending.get("ticket_state_id", r.ticket_state_id), pending.get("user_id", r.user_id),
        pending.get("ticket_priority_id", r.ticket_priority_id),
        pending.get("type_id", r.type_id) or 1,
    )  # fmt: skip


class _ClockWrites:
    """Clock rows to insert, update and delete, one statement each."""

    def __init__(self) -> None:
        self.inserted: list[Clock] = []
        self.updated: list[Clock] = []
        self.deleted: list[int] = []

    async def flush(self, conn: AsyncConnection) -> None:
        if self.deleted:
            await conn.execute(
                delete(ticket_escalation).where(ticket_escalation.c.ticket_id.in_(self.deleted))
            )
        if self.inserted:
            await conn.execute(insert(ticket_escalation), [_clock_row(c) for c in self.inserted])
        if self.updated:
            await conn.execute(
                update(ticket_escalation)
                .where(ticket_escalation.c.ticket_id == bindparam("c_ticket_id"))
                .values({f: bindparam(f"c_{f}") for f in (*_CLOCK_FIELDS, "next_due")}),
                [{f"c_{k}": v for k, v in _clock_row(c).items()} for c in self.updated],
            )


def _clock_row(clock: Clock) -> dict[str, Any]:
    row = {f: getattr(clock, f) for f in _CLOCK_FIELDS}
    return {"ticket_id": clock.ticket_id, "next_due": clock.next_due(), **row}


def _clock(r: Row[Any]) -> Clock | None:
    if r.clock_ticket_id is None:
        return None
    return Clock(r.id, **{f: int(getattr(r, f"clock_{f}")) for f in _CLOCK_FIELDS})


async def _load(conn: AsyncConnection, ids: list[int]) -> list[Row[Any]]:
    """The tickets' rows with their clock rows (None columns when there is none)."""
    t, c = ticket.c, ticket_escalation.c
    query = (
        select(
            t.id, t.create_time, t.queue_id, t.sla_id, t.ticket_state_id, t.until_time,
            t.user_id, t.ticket_priority_id, t.type_id, t.escalation_time,
            *(t[name] for name in COLUMNS.values()), c.ticket_id.label("clock_ticket_id"),
            *(c[f].label(f"clock_{f}") for f in _CLOCK_FIELDS),
        )
        .outerjoin(ticket_escalation, c.ticket_id == t.id)
        .where(t.id.in_(ids))
        .order_by(t.id)
    )  # fmt: skip
    return list(await conn.execute(query))


def _state_id(r: Row[Any], pending: Mapping[int, Mapping[str, Any]]) -> int:
    return int(pending.get(r.id, {}).get("ticket_state_id", r.ticket_state_id))


def _facts(r: Row[Any], pending: Mapping[str, Any], policy: EscalationPolicy) -> ClockFacts:
    state_id = int(pending.get("ticket_state_id", r.ticket_state_id))
    created = epoch(r.create_time)
    return ClockFacts(
        ticket_id=r.id, created=created, queue_id=int(pending.get("queue_id", r.queue_id)),
        sla_id=pending.get("sla_id", r.sla_id), state_type=policy.state_types.get(state_id, ""),
        until_time=int(pending.get("until_time", r.until_time) or 0), update_anchor=created,
        # Closed before this change (the history of the change itself is not written yet).
        ever_closed=r.ticket_state_id in policy.closed_states,
    )  # fmt: skip


async def _read_articles(
    conn: AsyncConnection, wanted: list[ClockFacts], facts: dict[int, ClockFacts]
) -> None:
    """First response and update anchor of the `wanted` tickets, from their articles the
    customer sees (one query)."""
    if not wanted:
        return
    a = article.c
    rows = await conn.execute(
        select(a.ticket_id, a.article_sender_type_id, a.create_time)
        .where(
            a.ticket_id.in_([f.ticket_id for f in wanted]), a.is_visible_for_customer == 1,
            a.article_sender_type_id.in_(list(_SENDERS)),
        )
        .order_by(a.ticket_id, a.id)
    )  # fmt: skip
    found: dict[int, list[tuple[str, bool, int]]] = defaultdict(list)
    for r in rows:
        found[int(r.ticket_id)].append(
            (_SENDERS[r.article_sender_type_id], True, epoch(r.create_time))
        )
    for f in wanted:
        articles = found.get(f.ticket_id, [])
        first = next((at for sender, _, at in articles if sender == "agent"), None)
        facts[f.ticket_id] = replace(
            f, first_response=first, update_anchor=update_anchor(f.created, articles)
        )


async def _read_closed(
    conn: AsyncConnection, policy: EscalationPolicy, tickets: list[Row[Any]],
    wanted: list[ClockFacts], facts: dict[int, ClockFacts],
) -> None:  # fmt: skip
    """Whether the `wanted` tickets with a solution target were ever closed: a history row
    of theirs records a closed state."""
    ask = [
        f.ticket_id for f in wanted
        if not f.ever_closed and (t := policy.targets(f.queue_id, f.sla_id)) and t.solution
    ]  # fmt: skip
    if not ask or not policy.closed_states:
        return
    h = ticket_history.c
    closed = await conn.execute(
        select(h.ticket_id)
        .where(h.ticket_id.in_(ask), h.state_id.in_(sorted(policy.closed_states)))
        .distinct()
    )
    for ticket_id in closed.scalars():
        facts[int(ticket_id)] = replace(facts[int(ticket_id)], ever_closed=True)
