"""Queues and system addresses as admins edit them (the admin pages `/admin/queues` and
`/admin/addresses`).

Place in the flow: the gateway's address book and the postmaster's routing read these rows;
every change here raises the address book's change generation in the same transaction, so
running daemons reload it (see ``generations``). Rows the configuration file owns
(``provisioned_row``, see ``ownership``) are refused: the next start would overwrite the edit.
Values arrive checked by the configuration's own field rules; this module checks what only the
database knows (names taken, rows referred to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import generations, ownership, queue_defaults
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import permission_groups, queue, system_address, ticket
from pytrs.vocabulary import znuny

FOLLOW_UP_NAMES = {i: name for name, i in znuny.FOLLOW_UP_IDS.items()}
VALID, INVALID = 1, 2


class Refused(Exception):
    """A change the database state does not allow; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class QueueValues:
    name: str
    group_id: int
    follow_up: str  # possible | reject | new_ticket
    system_address_id: int | None = None
    comments: str = ""
    valid: bool = True


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    values: QueueValues
    group: str
    system_address: str  # "" when none
    tickets: int
    provisioned: bool


@dataclass(frozen=True, slots=True)
class AddressValues:
    address: str
    name: str
    queue_id: int
    valid: bool = True


@dataclass(frozen=True, slots=True)
class AddressRow:
    id: int
    values: AddressValues
    queue: str
    provisioned: bool


async def groups(conn: AsyncConnection) -> list[tuple[int, str]]:
    """(id, name) of every valid permission group, by name."""
    found = await conn.execute(
        select(permission_groups.c.id, permission_groups.c.name)
        .where(permission_groups.c.valid_id == VALID)
        .order_by(permission_groups.c.name)
    )
    return [(r.id, r.name) for r in found]


async def queues(conn: AsyncConnection) -> list[QueueRow]:
    """Every queue by name, valid or not, with its group, address and ticket count."""
    q, a, g = queue.c, system_address.c, permission_groups.c
    counts = (
        select(ticket.c.queue_id, func.count().label("n")).group_by(ticket.c.queue_id).subquery()
    )
    rows = list(
        await conn.execute(
            select(
                q.id,
                q.name,
                q.group_id,
                q.follow_up_id,
                q.system_address_id,
                q.comments,
                q.valid_id,
                g.name.label("group"),
                a.value0,
                counts.c.n,
            )
            .outerjoin(permission_groups, g.id == q.group_id)
            .outerjoin(system_address, a.id == q.system_address_id)
            .outerjoin(counts, counts.c.queue_id == q.id)
            .order_by(q.name)
        )
    )
    owned = await ownership.owned(conn, queue.name, {r.id: r.name for r in rows})
    return [_queue_row(r, r.id in owned) for r in rows]


def _queue_row(r: Any, provisioned: bool) -> QueueRow:
    values = QueueValues(
        name=r.name,
        group_id=r.group_id,
        follow_up=FOLLOW_UP_NAMES.get(r.follow_up_id, ""),
        system_address_id=r.system_address_id,
        comments=r.comments or "",
        valid=r.valid_id == VALID,
    )
    return QueueRow(
        id=r.id,
        values=values,
        group=r.group or "",
        system_address=r.value0 or "",
        tickets=int(r.n or 0),
        provisioned=provisioned,
    )


async def addresses(conn: AsyncConnection) -> list[AddressRow]:
    """Every system address by address, valid or not, with its queue's name."""
    a = system_address.c
    rows = list(
        await conn.execute(
            select(a.id, a.value0, a.value1, a.queue_id, a.valid_id, queue.c.name)
            .outerjoin(queue, queue.c.id == a.queue_id)
            .order_by(a.value0)
        )
    )
    owned = await ownership.owned(conn, system_address.name, {r.id: r.value0 for r in rows})
    return [
        AddressRow(
            id=r.id,
            values=AddressValues(r.value0, r.value1 or "", r.queue_id, r.valid_id == VALID),
            queue=r.name or "",
            provisioned=r.id in owned,
        )
        for r in rows
    ]


async def save_queue(db: Database, values: QueueValues, *, row_id: int | None, by: int) -> int:
    """Create (`row_id` None) or change a queue; its id. Refused: a provisioned row, a name
    taken, a group or system address that does not exist."""
    async with db.transaction() as conn:
        await _editable(conn, queue, "name", row_id)
        await _unique(conn, queue, "name", values.name, row_id, "a queue of that name exists")
        await _exists(conn, permission_groups, values.group_id, "group")
        if values.system_address_id is not None:
            await _exists(conn, system_address, values.system_address_id, "system address")
        columns = {
            "name": values.name,
            "group_id": values.group_id,
            "follow_up_id": znuny.FOLLOW_UP_IDS[values.follow_up],
            "system_address_id": values.system_address_id,
            "comments": values.comments,
            "valid_id": VALID if values.valid else INVALID,
        }
        if queue_defaults.required(conn):
            # Beside Znuny a queue must name an address, a salutation and a signature: a new
            # one gets the first valid of each unless given, a changed one keeps its own.
            if values.system_address_id is None:
                del columns["system_address_id"]
            if row_id is None:
                columns = {**await queue_defaults.new_queue_columns(conn), **columns}
        return await _write(conn, queue, columns, row_id, by)


async def save_address(db: Database, values: AddressValues, *, row_id: int | None, by: int) -> int:
    """Create (`row_id` None) or change a system address (stored lower-cased); its id.
    Refused: a provisioned row, an address taken, a queue that does not exist."""
    address = values.address.lower()
    async with db.transaction() as conn:
        await _editable(conn, system_address, "value0", row_id)
        await _unique(conn, system_address, "value0", address, row_id, "the address exists")
        await _exists(conn, queue, values.queue_id, "queue")
        columns = {
            "value0": address,
            "value1": values.name,
            "queue_id": values.queue_id,
            "valid_id": VALID if values.valid else INVALID,
        }
        return await _write(conn, system_address, columns, row_id, by)


async def _editable(conn: AsyncConnection, table: Table, key: str, row_id: int | None) -> None:
    if row_id is None:
        return
    current = await conn.scalar(select(table.c[key]).where(table.c.id == row_id))
    if current is None:
        raise Refused(f"no such {table.name.replace('_', ' ')}: {row_id}")
    if await ownership.owned(conn, table.name, {row_id: current}):
        raise Refused(f"{current}: managed by the configuration file")


async def _unique(
    conn: AsyncConnection, table: Table, key: str, value: str, row_id: int | None, taken: str
) -> None:
    holder = await conn.scalar(select(table.c.id).where(table.c[key] == value))
    if holder is not None and holder != row_id:
        raise Refused(f"{value}: {taken}")


async def _exists(conn: AsyncConnection, table: Table, row_id: int, what: str) -> None:
    if await conn.scalar(select(table.c.id).where(table.c.id == row_id)) is None:
        raise Refused(f"no such {what}: {row_id}")


async def _write(
    conn: AsyncConnection, table: Table, columns: dict[str, object], row_id: int | None, by: int
) -> int:
    now = utcnow()
    if row_id is None:
        audit = {"create_time": now, "create_by": by, "change_time": now, "change_by": by}
        inserted = await conn.execute(
            table.insert().returning(table.c.id).values(**columns, **audit)
        )
        row_id = int(inserted.scalar_one())
    else:
        changed = {"change_time": now, "change_by": by}
        await conn.execute(update(table).where(table.c.id == row_id).values(**columns, **changed))
    # The address book (addresses and the queues they lead to) is cached by every daemon.
    await generations.bump(conn, generations.ADDRESSES)
    return row_id
