"""A service desk for the API's ticket, article and attachment tests.

Queues: Support, Billing (group users, provisioned with system addresses and Support's
signature), Sales (group sales) and Gamma (group gamma). Agents: anna (rw Support and
Billing, ro Gamma), bob (rw Sales), boss (admin). Tickets are made through the ticket service
(`Tickets`), one by a real mail through the postmaster (`realistic_mail`: HTML with an inline
logo, a PDF attachment).
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
from ..zoom_support import deliver, newest_ticket, provision_desk, realistic_mail

ANNA, BOB, BOSS = "anna", "bob", "boss"


@dataclass
class Desk:
    """What a test gets: ticket numbers by role, and the service's ticket maker."""

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


async def build_desk(
    config: Config,
    db: Database,
    app: Any,
    make_user: Callable[..., Awaitable[int]],
    make_queue: Callable[..., Awaitable[int]],
    *,
    support: int = 3,
) -> Desk:
    """The queues, agents and tickets above; `support` tickets in Support made by the service
    (titles "Support 0", "Support 1" …), two in Sales, one in Gamma, and the mail's."""
    await provision_desk(db, config)
    await make_queue("Gamma")
    await make_user(ANNA, queues={"Support": "rw", "Billing": "rw", "Gamma": "ro"})
    await make_user(BOB, queues={"Sales": "rw"})
    await make_user(BOSS, role="admin", queues={})
    desk = Desk(Tickets(app))
    for n in range(support):
        desk.support.append(await desk.tickets.make("Support", f"Support {n}", body=f"Text {n}."))
    for n in range(2):
        desk.sales.append(await desk.tickets.make("Sales", f"Sales {n}", body="Secret plans."))
    desk.gamma.append(await desk.tickets.make("Gamma", "Gamma 0", body="Read only."))
    await deliver(config, db, realistic_mail())
    desk.mail = (await newest_ticket(db))[1]
    return desk
