"""The escalation index: each ticket's `escalation_*` columns and clock row, kept current in
the transaction that changes the ticket.

Place in the flow: `tickets.writes.Writes.flush` calls `recompute` for every ticket a flush
touches (mail path, ticket service, scheduler alike), before the ticket rows are updated; the
scheduler calls `rebuild` after a calendar, SLA or queue target changed. What the clocks mean
is `tickets.escalation` (pure); this module reads the facts they depend on for all touched
tickets in one query and writes what changed: the ticket columns (through the flush), the
`ticket_escalation` rows (one statement per kind of write), and the `Escalation…Stop` history.

The policy (queue and SLA targets, business calendars, state types) is cached per process and
database by `tickets.escalation_policy`, and read again when the ESCALATION generation moves.
With no target anywhere, no clock row and no pending time among the touched tickets, a flush
costs one small query.

Lock order: the callers hold the tickets' row locks (`get(lock=True)`, the postmaster's loads,
tickets inserted in the transaction); clock rows are only written after, never locked first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import generations
from pytrs.schema.database import for_update
from pytrs.schema.tables import (
    article,
    ticket,
    ticket_escalation,
    ticket_history,
)
from pytrs.tickets import escalation, history
from pytrs.tickets.escalation import (
    COLUMNS,
    Clock,
    ClockFacts,
    Recomputed,
    history_type,
    update_anchor,
)
from pytrs.tickets.escalation_policy import EscalationPolicy, cached, load_policy, policy_at
from pytrs.tickets.model import HistoryEntry
from pytrs.tickets.rows import epoch, history_row
from pytrs.vocabulary import znuny

# The policy is the index's input; it is read and cached in its own module.
__all__ = ["EscalationPolicy", "Outcome", "load_policy", "rebuild", "recompute"]

_CLOCK_FIELDS = tuple(
    c.name for c in ticket_escalation.c if c.name not in ("ticket_id", "next_due")
)


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
    the clock rows and returns the ticket columns and history to write.

    One query reads everything (the tickets, their clocks, what their articles and history
    say, and the ESCALATION generation); while escalations are off, one smaller query
    decides that nothing needs reading."""
    if not ticket_ids:
        return Outcome()
    pending = pending or {}
    ids = sorted(ticket_ids)
    policy = cached(conn)
    if policy is None or policy.off:
        found = await conn.execute(_PROBE, {"ids": ids})
        generation, clocks_exist, pending_exists = found.one()
        policy = await policy_at(conn, int(generation or 0))
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
    tickets = await _load(conn, ids, policy)
    if tickets and int(tickets[0].generation or 0) != policy.generation:
        # The targets changed since the policy was cached: read them, and the tickets again.
        policy = await policy_at(conn, int(tickets[0].generation or 0))
        tickets = await _load(conn, ids, policy)
    if any(_state_id(r, pending) not in policy.state_types for r in tickets):
        policy = await policy_at(conn, policy.generation, fresh=True)  # a state added since
    outcome = Outcome()
    writes = _ClockWrites()
    for r in tickets:
        f = _facts(r, pending.get(r.id, {}), policy)
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


async def _load(conn: AsyncConnection, ids: list[int], policy: EscalationPolicy) -> list[Row[Any]]:
    """The tickets' rows with their clock rows (None columns when there is none), the
    ESCALATION generation, and from their articles and history what the clocks need: the
    first customer-visible agent article, the latest one, the oldest customer-visible
    customer article after it, and whether a history row records a closed state."""
    closed = tuple(sorted(policy.closed_states)) if policy.solution else ()
    query = _QUERIES.get(closed)
    if query is None:
        query = _QUERIES[closed] = _load_query(closed)
    return list(await conn.execute(query, {"ids": ids}))


# While escalations are off: has anything a clock, or a touched ticket a pending time?
_PROBE = select(
    generations.value(generations.ESCALATION),
    select(ticket_escalation.c.ticket_id).exists(),
    select(ticket.c.id)
    .where(ticket.c.id.in_(bindparam("ids", expanding=True)), ticket.c.until_time != 0)
    .exists(),
)

# Built once per set of closed states: building the statement costs more than running it.
_QUERIES: dict[tuple[int, ...], Any] = {}


def _load_query(closed: tuple[int, ...]) -> Any:
    t, c = ticket.c, ticket_escalation.c
    return (
        select(
            t.id, t.create_time, t.queue_id, t.sla_id, t.ticket_state_id, t.until_time,
            t.user_id, t.ticket_priority_id, t.type_id, t.escalation_time,
            *(t[name] for name in COLUMNS.values()), c.ticket_id.label("clock_ticket_id"),
            *(c[f].label(f"clock_{f}") for f in _CLOCK_FIELDS),
            generations.value(generations.ESCALATION).label("generation"),
            *_article_facts(), _closed_before(closed),
        )
        .outerjoin(ticket_escalation, c.ticket_id == t.id)
        .where(t.id.in_(bindparam("ids", expanding=True)))
        .order_by(t.id)
    )  # fmt: skip


def _article_facts() -> list[Any]:
    """Correlated subqueries over the ticket's customer-visible articles (its `article`
    rows through the ticket_id index: as many rows as the ticket has articles)."""

    def visible(sender: int) -> Any:
        a = article.alias()
        return a, and_(
            a.c.ticket_id == ticket.c.id, a.c.is_visible_for_customer == 1,
            a.c.article_sender_type_id == sender,
        )  # fmt: skip

    agent, by_agent = visible(znuny.SENDER_AGENT)
    latest, by_latest = visible(znuny.SENDER_AGENT)
    customer, by_customer = visible(znuny.SENDER_CUSTOMER)
    # Nested two levels down: correlated to the outer ticket by hand (automatic correlation
    # only reaches the enclosing query, and would join every ticket instead).
    latest_agent_id = (
        select(func.max(latest.c.id)).where(by_latest).correlate(ticket).scalar_subquery()
    )
    return [
        select(func.min(agent.c.create_time)).where(by_agent).scalar_subquery()
        .label("first_agent"),
        select(func.max(agent.c.create_time)).where(by_agent).scalar_subquery()
        .label("latest_agent"),
        select(func.min(customer.c.create_time))
        .where(by_customer, customer.c.id > func.coalesce(latest_agent_id, 0))
        .scalar_subquery().label("customer_run"),
    ]  # fmt: skip


def _closed_before(closed: tuple[int, ...]) -> Any:
    """Whether a history row of the ticket records one of the `closed` states (Znuny: "ever
    closed"); not asked when no target has a solution time."""
    if not closed:
        return literal(False).label("closed_before")
    h = ticket_history.c
    return (
        select(h.id)
        .where(h.ticket_id == ticket.c.id, h.state_id.in_(closed))
        .exists()
        .label("closed_before")
    )


def _state_id(r: Row[Any], pending: Mapping[int, Mapping[str, Any]]) -> int:
    return int(pending.get(r.id, {}).get("ticket_state_id", r.ticket_state_id))


def _facts(r: Row[Any], pending: Mapping[str, Any], policy: EscalationPolicy) -> ClockFacts:
    state_id = int(pending.get("ticket_state_id", r.ticket_state_id))
    created = epoch(r.create_time)
    articles = []
    if r.latest_agent is not None:
        articles.append(("agent", True, epoch(r.latest_agent)))
    if r.customer_run is not None:
        articles.append(("customer", True, epoch(r.customer_run)))
    return ClockFacts(
        ticket_id=r.id, created=created, queue_id=int(pending.get("queue_id", r.queue_id)),
        sla_id=pending.get("sla_id", r.sla_id), state_type=policy.state_types.get(state_id, ""),
        until_time=int(pending.get("until_time", r.until_time) or 0),
        first_response=epoch(r.first_agent) if r.first_agent is not None else None,
        update_anchor=update_anchor(created, articles),
        # Closed before this change (the history of the change itself is not written yet).
        ever_closed=bool(r.closed_before) or r.ticket_state_id in policy.closed_states,
    )  # fmt: skip
