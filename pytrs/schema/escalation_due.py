"""What the scheduler reads and writes of the escalation clocks (`ticket_escalation`).

Place in the flow: the scheduler's due scan (`scheduler.due_scan`) claims the tickets whose
clock is due — through the index on `next_due`, so a scan costs O(due), never O(open tickets)
— and writes their advanced clock rows back in the same transaction; its notifications ask who
the agents to tell are; its rebuild job walks the open tickets in id order and keeps the
ESCALATION generation it last rebuilt for in `system_data`. The clocks themselves are computed
by `tickets.escalation_index` (every ticket change) and `tickets.escalation` (what is due).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import agent_address, agent_rights, generations
from pytrs.schema.agent_access import GROUP_ADMIN, READ_WRITE, VALID
from pytrs.schema.database import (
    Database,
    conflict_insert,
    for_update,
    session_lock,
    utcnow,
)
from pytrs.schema.tables import (
    TicketState,
    TicketStateType,
    queue,
    system_data,
    ticket,
    ticket_escalation,
    users,
)
from pytrs.vocabulary import znuny

CLOCK_COLUMNS = (
    "response_time", "response_notify", "response_stage", "update_time", "update_notify",
    "update_stage", "solution_time", "solution_notify", "solution_stage", "pending_time",
    "pending_stage",
)  # fmt: skip
REBUILT_KEY = "pytrs.escalation.rebuilt_generation"
CLOSED_TYPES = ("closed", "removed", "merged")
_state = cast(Table, TicketState.__table__)
_state_type = cast(Table, TicketStateType.__table__)
# The advisory lock space and key of the rebuild ("pyts"): one daemon rebuilds at a time.
_REBUILD_LOCK = (0x70797473, 1)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due ticket, its row locked until the transaction ends, with its clock row."""

    ticket_id: int
    queue_id: int
    sla_id: int | None
    clock: dict[str, int]


async def claim_due(conn: AsyncConnection, now: int, limit: int) -> list[int]:
    """Ids of up to `limit` tickets whose clock is due at `now` (earliest first), their rows
    locked until the transaction ends.

    PostgreSQL: rows another scanner holds are skipped (`SKIP LOCKED`), so concurrent daemons
    share the work; SQLite's BEGIN IMMEDIATE serialises them. The clock rows this statement
    saw may be older than the lock (another scanner may have committed in between): read them
    again with `load_claimed` before deciding anything.
    """
    e = ticket_escalation.c
    query = (
        select(ticket.c.id)
        .join(ticket_escalation, e.ticket_id == ticket.c.id)
        .where(e.next_due <= now)
        .order_by(e.next_due)
        .limit(limit)
    )
    # FOR NO KEY UPDATE, as the ticket service locks: rows that only refer to the ticket (its
    # history, articles and outbox rows written by others) are not held up.
    query = for_update(conn, query, skip_locked=True, of=ticket, key_share=True)
    return [int(i) for i in await conn.scalars(query)]


async def load_claimed(conn: AsyncConnection, ids: Collection[int]) -> list[Claimed]:
    """The claimed tickets' queue, SLA and clock row as they are now (a new statement, so on
    PostgreSQL it sees what committed before our lock was granted)."""
    if not ids:
        return []
    e = ticket_escalation.c
    query = (
        select(ticket.c.id, ticket.c.queue_id, ticket.c.sla_id, *(e[c] for c in CLOCK_COLUMNS))
        .join(ticket_escalation, e.ticket_id == ticket.c.id)
        .where(ticket.c.id.in_(sorted(ids)))
        .order_by(ticket.c.id)
    )
    return [
        Claimed(int(r.id), int(r.queue_id), r.sla_id,
                {c: int(r._mapping[c] or 0) for c in CLOCK_COLUMNS})
        for r in await conn.execute(query)
    ]  # fmt: skip


async def store_clocks(conn: AsyncConnection, clocks: Sequence[dict[str, Any]]) -> None:
    """Write advanced clock rows (`ticket_id`, `next_due` and the clock columns) of claimed
    tickets."""
    if not clocks:
        return
    columns = ("next_due", *CLOCK_COLUMNS)
    await conn.execute(
        update(ticket_escalation)
        .where(ticket_escalation.c.ticket_id == bindparam("c_ticket_id"))
        .values({c: bindparam(f"c_{c}") for c in columns}),
        [{f"c_{k}": v for k, v in clock.items()} for clock in clocks],
    )


@dataclass(frozen=True, slots=True)
class Agent:
    login: str
    email: str


async def owners(conn: AsyncConnection, user_ids: Collection[int]) -> dict[int, Agent]:
    """The valid agents among `user_ids` who have an address (never the system user)."""
    wanted = [u for u in user_ids if u != znuny.USER_ROOT]
    if not wanted:
        return {}
    u = users.c
    email = agent_address.address(conn)
    query = select(u.id, u.login, email.label("email")).where(
        u.id.in_(wanted), u.valid_id == VALID, email.is_not(None), email != ""
    )
    return {
        int(r.id): Agent(r.login, agent_address.text_of(r.email)) for r in await conn.execute(query)
    }


async def queue_writers(
    conn: AsyncConnection, queue_ids: Collection[int]
) -> dict[int, list[Agent]]:
    """Per queue: the valid agents with an address who hold `rw` on its group (or are
    administrators), by login."""
    out: dict[int, list[Agent]] = {q: [] for q in queue_ids}
    if not out:
        return out
    g, u = agent_rights.held(conn).c, users.c
    email = agent_address.address(conn)
    query = (
        select(queue.c.id.label("queue_id"), u.login, email.label("email"))
        .select_from(queue)
        .join(users, u.valid_id == VALID)
        .where(
            queue.c.id.in_(sorted(out)),
            u.id != znuny.USER_ROOT,
            email.is_not(None),
            email != "",
            exists().where(
                g.user_id == u.id,
                g.permission_key == READ_WRITE,
                (g.group_id == queue.c.group_id) | (g.group_id == GROUP_ADMIN),
            ),
        )
        .order_by(queue.c.id, u.login)
    )
    for r in await conn.execute(query):
        out[int(r.queue_id)].append(Agent(r.login, agent_address.text_of(r.email)))
    return out


# --- the rebuild after a change of targets, SLAs or calendars -----------------------------------


async def generation_state(conn: AsyncConnection) -> tuple[int, int]:
    """(the ESCALATION generation now, the one the last finished rebuild was for)."""
    current = await conn.scalar(select(generations.value(generations.ESCALATION)))
    stored = await conn.scalar(
        select(system_data.c.data_value).where(system_data.c.data_key == REBUILT_KEY)
    )
    try:
        done = int(stored) if stored else 0
    except ValueError:
        done = 0
    return int(current or 0), done


async def record_rebuilt(conn: AsyncConnection, generation: int) -> None:
    now = utcnow()
    await conn.execute(
        conflict_insert(conn, system_data)
        .values(data_key=REBUILT_KEY, data_value=str(generation), create_time=now, create_by=1,
                change_time=now, change_by=1)
        .on_conflict_do_update(
            index_elements=["data_key"], set_={"data_value": str(generation), "change_time": now}
        )
    )  # fmt: skip


async def lock_open_tickets(conn: AsyncConnection, after: int, limit: int) -> list[int]:
    """The next `limit` open tickets (not closed, removed or merged) with ids above `after`,
    in id order, their rows locked for the transaction."""
    query = (
        select(ticket.c.id)
        .join(_state, _state.c.id == ticket.c.ticket_state_id)
        .join(_state_type, _state_type.c.id == _state.c.type_id)
        .where(ticket.c.id > after, _state_type.c.name.not_in(CLOSED_TYPES))
        .order_by(ticket.c.id)
        .limit(limit)
    )
    query = for_update(conn, query, of=ticket, key_share=True)
    return [int(i) for i in (await conn.scalars(query))]


def rebuild_lock(db: Database) -> AbstractAsyncContextManager[bool]:
    """The lock one daemon holds while it rebuilds (yields whether this one got it): held by a
    session, so a daemon killed mid-rebuild leaves the work to the next run."""
    return session_lock(db, *_REBUILD_LOCK)
