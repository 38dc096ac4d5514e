"""Change generations: how a running daemon learns that data it caches has changed.

Place in the flow: every write pytrs makes to cached data (``filter_repo.replace_rules``,
``response_repo`` imports and provisioning, ``provision`` for system addresses) calls ``bump``
in the same transaction as the change; the readers (the postmaster worker's filters and
auto-responses, the address book) put ``value(...)`` into the cheap query that decides whether
to reload. Row counts and highest ids alone cannot tell: SQLite hands out the same ids again
after an import deleted every row, so a different rule set of the same size looked unchanged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import conflict_insert
from pytrs.schema.tables import change_generation

FILTERS = "postmaster_filter"
RESPONSES = "auto_response"  # auto_response and queue_auto_response
ADDRESSES = "system_address"  # system addresses and the queues they lead to
ESCALATION = "escalation"  # queue escalation targets, SLAs and business calendars


async def bump(conn: AsyncConnection, *names: str) -> None:
    """Count one change of each of `names`, in `conn`'s transaction."""
    column = change_generation.c.generation
    for name in names:
        await conn.execute(
            conflict_insert(conn, change_generation)
            .values(name=name, generation=1)
            .on_conflict_do_update(index_elements=["name"], set_={"generation": column + 1})
        )


def value(name: str) -> Any:
    """The generation of `name` (0 before its first change), as a scalar subquery."""
    return (
        select(func.coalesce(func.max(change_generation.c.generation), 0))
        .where(change_generation.c.name == name)
        .scalar_subquery()
    )
