"""Which recipients pytrs accepts: its system addresses and their `+tag` forms.

Used by the SMTP/LMTP RCPT check (anything else is refused with 550, so pytrs is never a
relay) and by the pipe. Loaded from the `system_address` table at start, and again whenever
`refresh` sees it changed (another daemon's start provisioned addresses, say): the daemon
refreshes it every few seconds and each postmaster worker before each batch. An address the
inbox could not store as it is (too long for its column, a NUL, bytes that are not UTF-8) is
refused at once rather than accepted and then failed or silently altered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.parsers.addresses import base_address
from pytrs.schema import generations, storable
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox, queue, system_address


def recipient_problem(address: str) -> str | None:
    """Why the envelope recipient `address` cannot be stored in the inbox, or None."""
    return storable.problem(inbox.c.recipient, address.lower())


@dataclass
class AddressBook:
    """System address → queue name, replaced as a whole on reload."""

    queues_by_address: dict[str, str] = field(default_factory=dict)
    version: tuple[Any, ...] = ()

    def queue_for(self, address: str) -> str | None:
        return self.queues_by_address.get(base_address(address))

    def accepts(self, address: str) -> bool:
        return base_address(address) in self.queues_by_address

    async def reload(self, db: Database) -> None:
        """Load the valid system addresses (the dict is replaced, never changed in place)."""
        query = (
            select(system_address.c.value0, queue.c.name)
            .join(queue, queue.c.id == system_address.c.queue_id)
            .where(system_address.c.valid_id == 1)
        )
        async with db.connect() as conn:
            # Read first: a change committed between the two reads is then seen next time.
            version = await _version(conn)
            rows = (await conn.execute(query)).all()
        self.queues_by_address = {address.lower(): name for address, name in rows}
        self.version = version

    async def refresh(self, db: Database) -> bool:
        """Reload when the system addresses changed since the last load; True if it did."""
        async with db.connect() as conn:
            version = await _version(conn)
        if version == self.version:
            return False
        await self.reload(db)
        return True


async def _version(conn: AsyncConnection) -> tuple[Any, ...]:
    # pytrs's writes raise the generation; a count and the newest change_time catch most edits
    # made by other means (Znuny's admin interface sets change_time).
    sa = system_address.c
    query = select(
        generations.value(generations.ADDRESSES),
        select(func.count()).select_from(system_address).scalar_subquery(),
        select(func.max(sa.change_time)).scalar_subquery(),
    )
    return tuple((await conn.execute(query)).one())
