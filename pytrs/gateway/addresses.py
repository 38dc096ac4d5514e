"""Which recipients pytrs accepts: its system addresses and their `+tag` forms.

Used by the SMTP/LMTP RCPT check (anything else is refused with 550, so pytrs is never a
relay) and by the pipe. Loaded from the `system_address` table at start and on reload. An
address the inbox could not store as it is (too long for its column, a NUL, bytes that are not
UTF-8) is refused at once rather than accepted and then failed or silently altered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from pytrs.parsers.addresses import base_address
from pytrs.schema import storable
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox, queue, system_address


def recipient_problem(address: str) -> str | None:
    """Why the envelope recipient `address` cannot be stored in the inbox, or None."""
    return storable.problem(inbox.c.recipient, address.lower())


@dataclass
class AddressBook:
    """System address → queue name, replaced as a whole on reload."""

    queues_by_address: dict[str, str] = field(default_factory=dict)

    def queue_for(self, address: str) -> str | None:
        return self.queues_by_address.get(base_address(address))

    def accepts(self, address: str) -> bool:
        return base_address(address) in self.queues_by_address

    async def reload(self, db: Database) -> None:
        query = (
            select(system_address.c.value0, queue.c.name)
            .join(queue, queue.c.id == system_address.c.queue_id)
            .where(system_address.c.valid_id == 1)
        )
        async with db.connect() as conn:
            rows = (await conn.execute(query)).all()
        self.queues_by_address = {address.lower(): name for address, name in rows}
