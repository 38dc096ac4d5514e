"""The agents' queue view: a filtered, sorted, keyset-paged page of tickets, and the counts per
queue beside it.

Place in the flow: read-only, beside the ticket service; the web queue view (`/`) calls it with
the queues the agent may read, and that permission is part of every query (``queue_id IN``),
so a ticket of another queue cannot appear through any filter, sort or cursor. Paging is by
keyset: the cursor holds the sort value and id of the row it continues from, so page 1 and page
2,000 cost the same with 100,000 tickets, and tickets arriving meanwhile shift nothing. Each
sort key has an index ending in the id (migration 0012). The search beside it is
`tickets/search_reads.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from pytrs.schema.tables import TicketPriority, TicketState, queue, ticket, users
from pytrs.tickets.queries import OPEN_STATE_TYPES, PENDING_STATE_TYPES
from pytrs.vocabulary import znuny

_state = cast(Table, TicketState.__table__)
_priority = cast(Table, TicketPriority.__table__)
_owner = users.alias("owner")

# The state filter's views: Znuny's "open" (every ticket that still wants work) is the default.
VIEWS: dict[str, tuple[str, ...]] = {
    "open": OPEN_STATE_TYPES, "pending": PENDING_STATE_TYPES, "closed": ("closed",), "all": (),
}  # fmt: skip
_TYPE_IDS = {name: i for i, name in znuny.STATE_TYPES}
# Sort keys: (column, default order). The ticket number is unique, so it needs no tie-break.
SORTS: dict[str, tuple[Any, str]] = {
    "age": (ticket.c.create_time, "asc"),  # the longest waiting first, as a queue is worked
    "changed": (ticket.c.change_time, "desc"),
    "priority": (ticket.c.ticket_priority_id, "desc"),
    "number": (ticket.c.tn, "desc"),
    "title": (ticket.c.title, "asc"),  # never NULL in rows pytrs writes (keyset needs that)
}
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue view shows; `owner_id` is also "mine" (the agent's own id)."""

    queue_id: int | None = None
    view: str = "open"  # a key of VIEWS
    state_id: int | None = None  # one state, instead of the view's
    owner_id: int | None = None
    unassigned: bool = False  # unlocked, or owned by the system user (Znuny's "available")
    # Epoch seconds: only tickets escalated or escalating by then (ix_ticket_escalation_time);
    # 0 = no such filter.
    escalating_by: int = 0


@dataclass(frozen=True, slots=True)
class Sort:
    key: str = "age"
    order: str = ""  # "asc" | "desc"; empty: the key's default

    def resolved(self) -> Sort:
        key = self.key if self.key in SORTS else "age"
        order = self.order if self.order in ("asc", "desc") else SORTS[key][1]
        return Sort(key, order)


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    tn: str
    title: str
    queue_id: int
    queue: str
    state: str
    state_type: str
    priority_id: int
    priority: str
    owner: str
    owner_id: int
    locked: bool
    customer: str
    created: datetime
    changed: datetime
    escalation_time: int  # epoch seconds; 0 = no escalation


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: tuple[QueueRow, ...]
    next_cursor: str | None
    prev_cursor: str | None


@dataclass(frozen=True, slots=True)
class QueueCount:
    queue_id: int
    name: str
    tickets: int


def row_columns() -> Select[Any]:
    """The queue view's columns, names joined in (shared with the search results)."""
    return (
        select(
            ticket.c.id, ticket.c.tn, ticket.c.title, ticket.c.queue_id,
            queue.c.name.label("queue"), _state.c.name.label("state"),
            _state.c.type_id.label("state_type_id"), ticket.c.ticket_priority_id,
            _priority.c.name.label("priority"), _owner.c.login.label("owner"),
            ticket.c.user_id, ticket.c.ticket_lock_id, ticket.c.customer_user_id,
            ticket.c.create_time, ticket.c.change_time, ticket.c.escalation_time,
        )
        .join(queue, queue.c.id == ticket.c.queue_id)
        .join(_state, _state.c.id == ticket.c.ticket_state_id)
        .join(_priority, _priority.c.id == ticket.c.ticket_priority_id)
        .outerjoin(_owner, _owner.c.id == ticket.c.user_id)
    )  # fmt: skip


def to_row(r: Any) -> QueueRow:
    return QueueRow(
        id=r.id, tn=r.tn, title=r.title or "", queue_id=r.queue_id, queue=r.queue,
        state=r.state, state_type=dict(znuny.STATE_TYPES).get(r.state_type_id, ""),
        priority_id=r.ticket_priority_id, priority=r.priority, owner=r.owner or "",
        owner_id=r.user_id,
        locked=r.ticket_lock_id != znuny.LOCK_UNLOCK, customer=r.customer_user_id or "",
        created=r.create_time, changed=r.change_time, escalation_time=r.escalation_time or 0,
    )  # fmt: skip


async def queue_page(
    conn: AsyncConnection, readable: Collection[int], where: QueueFilter, sort: Sort,
    cursor: str | None = None, limit: int = PAGE_SIZE, *, states: States | None = None,
) -> QueuePage:  # fmt: skip
    """One page of the tickets of `readable` queues matching `where`, in `sort` order, after
    (or, for a "previous" cursor, before) the position `cursor` holds. `states`: the state
    table if the caller has read it already (`load_states`)."""
    sort = sort.resolved()
    conditions = _conditions(readable, where, states or await load_states(conn))
    if conditions is None:
        return QueuePage((), None, None)
    position = decode_cursor(cursor, sort)
    backwards = position is not None and position[0] == "prev"
    column, _default = SORTS[sort.key]
    keys = [column] if sort.key == "number" else [column, ticket.c.id]
    ascending = (sort.order == "asc") != backwards
    if position is not None:
        bound = tuple_(*keys) if len(keys) > 1 else keys[0]
        value = tuple_(*position[1]) if len(keys) > 1 else position[1][0]
        conditions.append(bound > value if ascending else bound < value)
    query = (
        row_columns()
        .where(*conditions)
        .order_by(*[k.asc() if ascending else k.desc() for k in keys])
        .limit(limit + 1)  # one more says whether there is a page beyond
    )
    rows = [to_row(r) for r in await conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    if not rows:
        return QueuePage((), None, None)
    after = encode_cursor(sort, "next", rows[-1])
    before = encode_cursor(sort, "prev", rows[0])
    if backwards:
        return QueuePage(tuple(rows), after, before if more else None)
    return QueuePage(tuple(rows), after if more else None, before if position else None)


async def queue_counts(
    conn: AsyncConnection, readable: Collection[int], where: QueueFilter,
    *, states: States | None = None,
) -> list[QueueCount]:  # fmt: skip
    """Every readable queue with the number of its open tickets (Znuny's "viewable": what
    still wants work), under `where`'s owner filters, whatever queue or states `where` shows;
    by name. Open tickets only, as Znuny's queue tree: a count of every ticket ever closed
    would read the whole table on each page and tell an agent nothing."""
    names = await conn.execute(
        select(queue.c.id, queue.c.name).where(queue.c.id.in_(list(readable)))
    )
    counted: dict[int, int] = {}
    wanted = replace(where, queue_id=None, view="open", state_id=None)
    conditions = _conditions(readable, wanted, states or await load_states(conn))
    if conditions is not None:
        query = select(ticket.c.queue_id, func.count()).where(*conditions)
        counted = {q: n for q, n in await conn.execute(query.group_by(ticket.c.queue_id))}
    return sorted(
        (QueueCount(i, name, counted.get(i, 0)) for i, name in names),
        key=lambda c: c.name.lower(),
    )


def _conditions(
    readable: Collection[int], where: QueueFilter, states: States
) -> list[ColumnElement[bool]] | None:
    """The WHERE clauses of `where`, permissions first; None when nothing can match."""
    queues = sorted(readable)
    if where.queue_id is not None:
        queues = [where.queue_id] if where.queue_id in readable else []
    if not queues:
        return None
    conditions: list[ColumnElement[bool]] = [ticket.c.queue_id.in_(queues)]
    if where.state_id is not None:
        conditions.append(ticket.c.ticket_state_id == where.state_id)
    elif VIEWS.get(where.view):
        type_ids = {_TYPE_IDS[name] for name in VIEWS[where.view]}
        # The ids as values, not a subquery: the planner then sees the list it filters by.
        state_ids = sorted(i for i, (_name, type_id) in states.items() if type_id in type_ids)
        conditions.append(ticket.c.ticket_state_id.in_(state_ids))
    if where.owner_id is not None:
        conditions.append(ticket.c.user_id == where.owner_id)
    if where.unassigned:
        conditions.append(
            or_(ticket.c.user_id == znuny.USER_ROOT, ticket.c.ticket_lock_id == znuny.LOCK_UNLOCK)
        )
    if where.escalating_by:
        conditions.append(ticket.c.escalation_time > 0)
        conditions.append(ticket.c.escalation_time <= where.escalating_by)
    return conditions


# --- cursors: where a page starts, opaque to the browser ---


def encode_cursor(sort: Sort, direction: str, row: QueueRow) -> str:
    value: Any = {
        "age": row.created, "changed": row.changed, "priority": row.priority_id,
        "number": row.tn, "title": row.title,
    }[sort.key]  # fmt: skip
    if isinstance(value, datetime):
        value = value.isoformat()
    data = json.dumps([sort.key, sort.order, direction, value, row.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, sort: Sort) -> tuple[str, tuple[Any, ...]] | None:
    """(direction, key values) of `cursor`, or None for a missing, garbled or foreign one
    (another sort's cursor starts the list at its first page rather than failing)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, order, direction, value, ticket_id = json.loads(raw)
        if (key, order) != (sort.key, sort.order) or direction not in ("next", "prev"):
            return None
        if key in ("age", "changed"):
            value = datetime.fromisoformat(value)
        elif key == "priority":
            value = int(value)
        elif not isinstance(value, str):
            return None
        return direction, ((value,) if key == "number" else (value, int(ticket_id)))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None


# The state table: id → (name, state type id); a few rows, read once per page.
States = dict[int, tuple[str, int]]


async def load_states(conn: AsyncConnection) -> States:
    found = await conn.execute(select(_state.c.id, _state.c.name, _state.c.type_id))
    return {i: (name, type_id) for i, name, type_id in found}


@dataclass(frozen=True, slots=True)
class Choices:
    """What the filter form offers: states (id, name) and valid agents (id, login)."""

    states: tuple[tuple[int, str], ...]
    agents: tuple[tuple[int, str], ...]


async def filter_choices(conn: AsyncConnection, states: States | None = None) -> Choices:
    states = states or await load_states(conn)
    by_name = sorted(((i, name) for i, (name, _type) in states.items()), key=lambda s: s[1])
    agents = await conn.execute(
        select(users.c.id, users.c.login)
        .where(users.c.valid_id == 1, users.c.id != znuny.USER_ROOT)
        .order_by(users.c.login)
    )
    return Choices(tuple(by_name), tuple((i, n) for i, n in agents))
