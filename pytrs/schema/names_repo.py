"""The names the database knows: valid queues, states, priorities, agents … (for checking values).

Place in the flow: read by `pytrs filters import|test` so that a rule setting a name nobody
knows is refused before mail is routed with it. Which control header takes which kind of name is
the postmaster's business (`postmaster.control`); this module only answers "which names exist",
one set per kind, from the same rows the worker resolves names with.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import Database
from pytrs.schema.tables import (
    ArticleSenderType,
    TicketLockType,
    TicketPriority,
    TicketState,
    TicketType,
    dynamic_field,
    queue,
    sla,
    users,
)

# Kind of name → the table holding it (valid rows only; `name` and `id` columns).
_NAMED = {
    "queue": queue,
    "state": cast(Table, TicketState.__table__),
    "priority": cast(Table, TicketPriority.__table__),
    "type": cast(Table, TicketType.__table__),
    "lock": cast(Table, TicketLockType.__table__),
    "sender_type": cast(Table, ArticleSenderType.__table__),
    "sla": sla,
}

# Every kind `valid_names` returns; `<kind>_id` holds the ids of a named kind as text.
KINDS = (*_NAMED, *(f"{kind}_id" for kind in _NAMED), "agent", "dynamic_field")


async def valid_names(db: Database) -> dict[str, frozenset[str]]:
    """Valid names by kind (see KINDS). "agent" holds agents' logins and, as text, their ids
    (a header may name an agent either way); "dynamic_field" the ticket dynamic fields."""
    found: dict[str, frozenset[str]] = {}
    async with db.connect() as conn:
        for kind, table in _NAMED.items():
            rows = list(await conn.execute(select(table.c.name, table.c.id).where(_valid(table))))
            found[kind] = frozenset(r.name for r in rows)
            found[f"{kind}_id"] = frozenset(str(r.id) for r in rows)
        agents = list(await conn.execute(select(users.c.login, users.c.id).where(_valid(users))))
        found["agent"] = frozenset(r.login for r in agents) | {str(r.id) for r in agents}
        found["dynamic_field"] = await _dynamic_fields(conn)
    return found


def _valid(table: Table) -> Any:
    return table.c.valid_id == 1


async def _dynamic_fields(conn: AsyncConnection) -> frozenset[str]:
    rows = await conn.execute(
        select(dynamic_field.c.name).where(
            _valid(dynamic_field), dynamic_field.c.object_type == "Ticket"
        )
    )
    return frozenset(r.name for r in rows)
