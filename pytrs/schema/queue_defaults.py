"""What a new queue must name beside Znuny: a system address, a salutation and a signature.

Place in the flow: `provision` (`[[queues]]`) and the admin page's `queue_repo.save_queue` ask
here before inserting a queue. Znuny 7.0's ``queue`` has ``system_address_id``,
``salutation_id`` and ``signature_id`` NOT NULL with foreign keys (``scripts/database/
schema.xml``); pytrs's own database leaves them NULL (it has no salutations or signatures), so
in pytrs mode nothing is added. The choice is made from the connection's shape.
"""

from __future__ import annotations

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.shape import shape_of
from pytrs.schema.tables import queue, system_address
from pytrs.schema.znuny_tables import salutation, signature

VALID = 1
# Znuny's seeded system address, salutation and signature: the fallback when no valid row is
# left (Znuny's installer creates id 1 of each).
SEEDED = 1


def required(conn: AsyncConnection) -> bool:
    """Whether queues must name a system address, salutation and signature (beside Znuny)."""
    return shape_of(conn).znuny


async def new_queue_columns(conn: AsyncConnection) -> dict[str, int]:
    """The columns a new queue needs beside Znuny ({} in pytrs's own database): the first valid
    system address, salutation and signature by id (the seeded ones, 1, when none is valid).
    `queue_addresses` later points a configured queue at an address of its own."""
    if not required(conn):
        return {}
    return {
        "system_address_id": await _first_valid(conn, system_address),
        "salutation_id": await _first_valid(conn, salutation),
        "signature_id": await _first_valid(conn, signature),
    }


async def _first_valid(conn: AsyncConnection, table: Table) -> int:
    found = await conn.scalar(
        select(table.c.id).where(table.c.valid_id == VALID).order_by(table.c.id).limit(1)
    )
    return SEEDED if found is None else int(found)


async def queue_addresses(conn: AsyncConnection, queue_ids: dict[str, int]) -> None:
    """Beside Znuny: each of the named queues (name → id) sends from its first valid system
    address (by id) when it has one, as Znuny's queue form asks an admin to choose; queues
    without one keep what they have."""
    if not required(conn) or not queue_ids:
        return
    a = system_address.c
    rows = await conn.execute(
        select(a.queue_id, a.id)
        .where(a.queue_id.in_(sorted(queue_ids.values())), a.valid_id == VALID)
        .order_by(a.id)
    )
    first: dict[int, int] = {}
    for row in rows:
        first.setdefault(int(row.queue_id), int(row.id))
    current = dict(
        (await conn.execute(
            select(queue.c.id, queue.c.system_address_id).where(queue.c.id.in_(sorted(first)))
        )).all()
    )  # fmt: skip
    for queue_id, address_id in sorted(first.items()):
        if current.get(queue_id) != address_id:
            await conn.execute(
                queue.update().where(queue.c.id == queue_id).values(system_address_id=address_id)
            )
