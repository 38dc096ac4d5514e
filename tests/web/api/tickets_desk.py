"""Tickets for the API's ticket, article and attachment tests, on the conftest's desk.

The conftest's desk: queues Support, Billing (group users; Support with a signature), Sales
(group sales), system addresses, and "boss" (admin) among its agents. Added here: queue Gamma
(group gamma), agents anna (rw Support and Billing, ro Gamma) and bob (rw Sales), and tickets
made through the ticket service, one by a real mail through the postmaster
(`realistic_mail`: HTML with an inline logo, a PDF attachment).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.schema.tables import ticket

from ..tickets_for_web import Tickets
from ..zoom_support import deliver, newest_ticket, realistic_mail

ANNA, BOB, BOSS = "anna", "bob", "boss"


@dataclass
class Office:
    """Ticket numbers by who may see them, and the service's ticket maker."""

    tickets: Tickets
    support: list[str] = field(default_factory=list)  # anna rw
    sales: list[str] = field(default_factory=list)  # anna cannot see these
    gamma: list[str] = field(default_factory=list)  # anna reads only
    mail: str = ""  # a ticket from a real mail in Support (HTML, inline image, PDF)

    async def ticket_id(self, tn: str) -> int:
        async with self.tickets.db.connect() as conn:
            found = await conn.scalar(select(ticket.c.id).where(ticket.c.tn == tn))
        assert found is not None
        return int(found)


async def open_office(
    config: Config,
    db: Database,
    app: Any,
    make_user: Callable[..., Awaitable[int]],
    make_queue: Callable[..., Awaitable[int]],
    *,
    support: int = 3,
) -> Office:
    """The queue, agents and tickets above: `support` tickets in Support ("Support 0" …, text
    "Text 0." …), two in Sales, one in Gamma, and the mail's in Support."""
    await make_queue("Gamma")
    await make_user(ANNA, queues={"Support": "rw", "Billing": "rw", "Gamma": "ro"})
    await make_user(BOB, queues={"Sales": "rw"})
    office = Office(Tickets(app))
    for n in range(support):
        office.support.append(
            await office.tickets.make("Support", f"Support {n}", body=f"Text {n}.")
        )
    for n in range(2):
        office.sales.append(await office.tickets.make("Sales", f"Sales {n}", body="Secret plans."))
    office.gamma.append(await office.tickets.make("Gamma", "Gamma 0", body="Read only."))
    await deliver(config, db, realistic_mail())
    office.mail = (await newest_ticket(db))[1]
    return office
