"""What the ticket service reads: tickets with their names, valid names, agents, own addresses.

One query per kind, whatever the number of tickets, so the postmaster can load every ticket a
batch changes in one round trip. `load_tickets(lock=True)` takes the ticket rows' locks (in id
order, on PostgreSQL) for the rest of the caller's transaction, so that the history written for
a change describes the ticket as it really was.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from pytrs.schema import agent_address, storable, ticket_repo
from pytrs.schema.database import for_update
from pytrs.schema.tables import (
    TicketLockType,
    TicketPriority,
    TicketState,
    TicketStateType,
    TicketType,
    queue,
    sla,
    system_address,
    ticket,
    users,
)
from pytrs.tickets.model import Actor, Names, TicketRecord
from pytrs.vocabulary import znuny

_state = cast(Table, TicketState.__table__)
_state_type = cast(Table, TicketStateType.__table__)
_priority = cast(Table, TicketPriority.__table__)
_lock = cast(Table, TicketLockType.__table__)
_type = cast(Table, TicketType.__table__)


def _record_query() -> Select[Any]:
    owner = aliased(users, name="owner")
    responsible = aliased(users, name="responsible")
    return (
        select(
            ticket.c.id, ticket.c.tn, ticket.c.title, queue.c.name.label("queue"),
            ticket.c.queue_id, _state.c.name.label("state"), ticket.c.ticket_state_id,
            _state_type.c.name.label("state_type"), _priority.c.name.label("priority"),
            ticket.c.ticket_priority_id, _lock.c.name.label("lock"), ticket.c.ticket_lock_id,
            owner.c.login.label("owner"), ticket.c.user_id,
            responsible.c.login.label("responsible"), ticket.c.responsible_user_id,
            _type.c.name.label("type"), ticket.c.type_id, ticket.c.customer_user_id,
            ticket.c.customer_id, ticket.c.create_time, ticket.c.change_time,
            ticket.c.sla_id, sla.c.name.label("sla"), ticket.c.until_time,
        )
        .join(queue, queue.c.id == ticket.c.queue_id)
        .join(_state, _state.c.id == ticket.c.ticket_state_id)
        .join(_state_type, _state_type.c.id == _state.c.type_id)
        .join(_priority, _priority.c.id == ticket.c.ticket_priority_id)
        .join(_lock, _lock.c.id == ticket.c.ticket_lock_id)
        .outerjoin(owner, owner.c.id == ticket.c.user_id)
        .outerjoin(responsible, responsible.c.id == ticket.c.responsible_user_id)
        .outerjoin(_type, _type.c.id == ticket.c.type_id)
        .outerjoin(sla, sla.c.id == ticket.c.sla_id)
    )  # fmt: skip


# Built once: the postmaster reads tickets with it in every batch.
_RECORDS = _record_query()


def _record(r: Row[Any]) -> TicketRecord:
    return TicketRecord(
        id=int(r.id), tn=r.tn, title=r.title or "", queue=r.queue, queue_id=r.queue_id,
        state=r.state, state_id=r.ticket_state_id, state_type=r.state_type,
        priority=r.priority, priority_id=r.ticket_priority_id, lock=r.lock,
        lock_id=r.ticket_lock_id, owner=r.owner or str(r.user_id), owner_id=r.user_id,
        responsible=r.responsible or str(r.responsible_user_id),
        responsible_id=r.responsible_user_id, type=r.type or "", type_id=r.type_id or 1,
        customer_user=r.customer_user_id or "", customer_id=r.customer_id or "",
        create_time=r.create_time, change_time=r.change_time, sla=r.sla or "",
        sla_id=r.sla_id, until_time=int(r.until_time or 0),
    )  # fmt: skip


async def load_tickets(
    conn: AsyncConnection, ids: Collection[int], *, lock: bool = False
) -> dict[int, TicketRecord]:
    """Tickets `ids` by id (missing ones left out); `lock` holds their rows until commit."""
    if not ids:
        return {}
    query = _RECORDS.where(ticket.c.id.in_(sorted(ids))).order_by(ticket.c.id)
    if lock:
        # FOR NO KEY UPDATE: the rows are changed, never their key, so rows that only refer
        # to them (articles, history of other writers) are not held up.
        query = for_update(conn, query, of=ticket, key_share=True)
    return {r.id: _record(r) for r in await conn.execute(query)}


async def find_number(conn: AsyncConnection, tn: str) -> TicketRecord | None:
    if storable.clean(tn) != tn:  # a NUL, not UTF-8: stored numbers have none, and
        return None  # PostgreSQL refuses such a query parameter
    row = (await conn.execute(_RECORDS.where(ticket.c.tn == tn.strip()))).first()
    return _record(row) if row is not None else None


async def load_names(conn: AsyncConnection) -> Names:
    """Every valid state, priority, queue, type and agent, by name."""
    states = await conn.execute(
        select(_state.c.name, _state.c.id, _state_type.c.name.label("kind"))
        .join(_state_type, _state_type.c.id == _state.c.type_id)
        .where(_state.c.valid_id == 1)
    )
    return Names(
        states={r.name: (r.id, r.kind) for r in states},
        priorities=await _valid(conn, _priority),
        queues=await _valid(conn, queue),
        types=await _valid(conn, _type),
        users={
            r.login: int(r.id)
            for r in await conn.execute(
                select(users.c.login, users.c.id).where(users.c.valid_id == 1)
            )
        },
        locks={name: i for i, name in znuny.LOCK_TYPES},
        slas=await _valid(conn, sla),
    )


async def _valid(conn: AsyncConnection, table: Table) -> dict[str, int]:
    rows = await conn.execute(select(table.c.name, table.c.id).where(table.c.valid_id == 1))
    return {r.name: int(r.id) for r in rows}


def seed_names(
    queues: dict[str, int], users: dict[str, int], slas: Mapping[str, int] | None = None
) -> Names:
    """Names as Znuny ships them plus the given queues and agents (the mail path, which has
    always resolved states and priorities by their shipped names)."""
    kinds = dict(znuny.STATE_TYPES)
    return Names(
        states={name: (i, kinds[kind]) for i, name, kind in znuny.STATES},
        priorities=znuny.PRIORITY_IDS, queues=queues,
        types={name: i for i, name in znuny.TICKET_TYPES}, users=users,
        locks={name: i for i, name in znuny.LOCK_TYPES}, slas=dict(slas or {}),
    )  # fmt: skip


async def find_agent(conn: AsyncConnection, login: str) -> Actor | None:
    """The valid agent with this login."""
    row = (
        await conn.execute(
            select(users.c.id, users.c.login, agent_address.address(conn).label("email"),
                   users.c.first_name, users.c.last_name)
            .where(users.c.login == login.strip(), users.c.valid_id == 1)
        )
    ).first()  # fmt: skip
    if row is None:
        return None
    name = f"{row.first_name or ''} {row.last_name or ''}".strip()
    return Actor(int(row.id), row.login, agent_address.text_of(row.email), name)


async def system_addresses(conn: AsyncConnection) -> set[str]:
    """Our own addresses as the database has them (lower-cased)."""
    rows = await conn.execute(select(system_address.c.value0))
    return {r.value0.lower() for r in rows}


async def last_customer_text(conn: AsyncConnection, ticket_id: int) -> tuple[str, str]:
    """(subject, body) of the newest customer-visible article from the customer's side."""
    found = await ticket_repo.last_customer_article(conn, ticket_id)
    return (found.subject, found.body) if found is not None else ("", "")


def record_of(
    ticket_id: int, values: Mapping[Any, Any], names: Names, *, queue: str | None = None,
    state: tuple[str, str] | None = None,
) -> TicketRecord:  # fmt: skip
    """A ticket's record from its columns (as `rows.ticket_row` got them, or a `ticket` row),
    named by `names` without reading the lookup tables. `queue` and `state` (name, type)
    stand in for ids `names` does not know."""
    name_of = names.name_of
    state_id = values["ticket_state_id"]
    state_name = name_of("states", state_id)
    if state_name in names.states:
        state_type = names.states[state_name][1]
    else:
        state_name, state_type = state or (state_name, "")
    queue_id = values["queue_id"]
    queue_name = name_of("queues", queue_id)
    if queue is not None and queue_name not in names.queues:
        queue_name = queue
    owner, responsible = values["user_id"], values["responsible_user_id"]
    type_id = values.get("type_id") or 1
    return TicketRecord(
        id=ticket_id, tn=values["tn"], title=values.get("title") or "", queue=queue_name,
        queue_id=queue_id, state=state_name, state_id=state_id, state_type=state_type,
        priority=name_of("priorities", values["ticket_priority_id"]),
        priority_id=values["ticket_priority_id"],
        lock=name_of("locks", values["ticket_lock_id"]), lock_id=values["ticket_lock_id"],
        owner=name_of("users", owner), owner_id=owner,
        responsible=name_of("users", responsible), responsible_id=responsible,
        type=name_of("types", type_id), type_id=type_id,
        customer_user=values.get("customer_user_id") or "",
        customer_id=values.get("customer_id") or "",
        create_time=values.get("create_time"), change_time=values.get("change_time"),
        sla=name_of("slas", values["sla_id"]) if values.get("sla_id") else "",
        sla_id=values.get("sla_id"), until_time=int(values.get("until_time") or 0),
    )  # fmt: skip


_COLUMNS = select(
    ticket.c.id, ticket.c.tn, ticket.c.title, ticket.c.queue_id, ticket.c.ticket_state_id,
    ticket.c.ticket_priority_id, ticket.c.ticket_lock_id, ticket.c.user_id,
    ticket.c.responsible_user_id, ticket.c.type_id, ticket.c.customer_user_id,
    ticket.c.customer_id, ticket.c.create_time, ticket.c.change_time, ticket.c.sla_id,
    ticket.c.until_time,
)  # fmt: skip


# Every postmaster batch runs it: built once, its cache key derived once.
_BATCH_RECORDS = _COLUMNS.where(ticket.c.id.in_(bindparam("ids", expanding=True))).order_by(
    ticket.c.id
)


async def load_records(
    conn: AsyncConnection, ids: Collection[int], names: Names, *, lock: bool = False,
    known: Mapping[int, tuple[str, str, str]] | None = None,
) -> dict[int, TicketRecord]:  # fmt: skip
    """`load_tickets` for the postmaster's batches: the ticket rows alone (a join of eight
    tables costs PostgreSQL four times the planning), named by `names`; `known` gives
    (queue, state, state type) by ticket id for names that `names` lacks."""
    if not ids:
        return {}
    query = for_update(conn, _BATCH_RECORDS, key_share=True) if lock else _BATCH_RECORDS
    known = known or {}
    found: dict[int, TicketRecord] = {}
    for r in await conn.execute(query, {"ids": sorted(ids)}):
        queue, state, state_type = known.get(r.id, (None, None, None))
        found[r.id] = record_of(
            r.id, r._mapping, names, queue=queue,
            state=(state, state_type) if state and state_type else None,
        )  # fmt: skip
    return found
