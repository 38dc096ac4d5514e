"""Links between tickets (Znuny's `link_relation`): rows and their history (pure), and the
insert that leaves an existing link alone.

A link is `Normal` (no direction: a follow-up opened as a new ticket and the closed ticket it
was meant for) or `ParentChild` (a merge target is the parent of the merged ticket). Each new
link writes a `TicketLinkAdd` entry on both tickets naming the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import conflict_insert
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import link_object, link_relation
from pytrs.tickets import history
from pytrs.tickets.errors import InvalidChange, UnknownName
from pytrs.tickets.model import HistoryEntry, TicketRecord

# Ids the 0009 migration seeds.
OBJECT_TICKET = 1
TYPES = {"Normal": 1, "ParentChild": 2}
STATE_VALID = 1


def link_row(source_id: int, target_id: int, kind: str, now: datetime, by: int) -> dict[str, Any]:
    """The `link_relation` row linking ticket `source_id` to `target_id`."""
    if kind not in TYPES:
        raise UnknownName("link type", kind, list(TYPES))
    if source_id == target_id:
        raise InvalidChange("a ticket cannot be linked to itself")
    return {
        "source_object_id": OBJECT_TICKET, "source_key": str(source_id),
        "target_object_id": OBJECT_TICKET, "target_key": str(target_id),
        "type_id": TYPES[kind], "state_id": STATE_VALID, "create_time": now, "create_by": by,
    }  # fmt: skip


def link_entries(source: TicketRecord, target: TicketRecord, kind: str) -> list[HistoryEntry]:
    """`TicketLinkAdd` on both tickets, each naming the other (source's first)."""
    return [
        history.entry(*history.link_add(target.tn, target.id, kind), source),
        history.entry(*history.link_add(source.tn, source.id, kind), target),
    ]


async def ticket_object_id(conn: AsyncConnection) -> int:
    """The id of the link object `Ticket`: seeded as 1 in pytrs's own database; beside Znuny
    whatever Znuny gave it, and created at first use as Znuny itself does (its
    initial data has no link objects)."""
    if not shape_of(conn).znuny:
        return OBJECT_TICKET
    query = select(link_object.c.id).where(link_object.c.name == "Ticket")
    found = await conn.scalar(query)
    if found is None:
        await conn.execute(
            conflict_insert(conn, link_object).values(name="Ticket").on_conflict_do_nothing()
        )
        found = await conn.scalar(query)
    if found is None:
        raise RuntimeError("link_object has no row 'Ticket' even after inserting it")
    return int(found)


async def insert_links(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Insert links that do not exist yet; returns how many rows were new (for one row: 1 or 0).
    A link already there in either direction counts as there for `Normal` links."""
    if not rows:
        return 0
    object_id = await ticket_object_id(conn)
    if object_id != OBJECT_TICKET:
        rows = [{**r, "source_object_id": object_id, "target_object_id": object_id} for r in rows]
    statement = conflict_insert(conn, link_relation).on_conflict_do_nothing()
    if len(rows) == 1:
        result = await conn.execute(statement.values(**rows[0]))
        return max(int(result.rowcount or 0), 0)
    await conn.execute(statement, rows)
    return len(rows)


async def linked(conn: AsyncConnection, a: int, b: int, kind: str) -> bool:
    """Whether tickets `a` and `b` are linked as `kind`, in either direction."""
    pairs = [(str(a), str(b)), (str(b), str(a))]
    object_id = await ticket_object_id(conn)
    found = await conn.execute(
        select(link_relation.c.type_id).where(
            link_relation.c.type_id == TYPES[kind],
            link_relation.c.source_object_id == object_id,
            link_relation.c.target_object_id == object_id,
            or_(*(and_(link_relation.c.source_key == s, link_relation.c.target_key == t)
                  for s, t in pairs)),
        )
    )  # fmt: skip
    return found.first() is not None
