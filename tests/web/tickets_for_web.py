"""Tickets for the agents' page tests: made through the ticket service in queues of their own
permission groups, so that an agent can read some and not others."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette

from pytrs.schema.database import Database
from pytrs.tickets import Actor, ArticleInput, NewTicket, TicketService

HOSTILE_SUBJECT = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
HOSTILE_NAME = '"<script>alert(3)</script>" <evil@attacker.example>'


class Tickets:
    """Makes tickets through the service (as mail or the web would)."""

    def __init__(self, app: Starlette) -> None:
        self.db: Database = app.state.db
        self.service: TicketService = app.state.tickets  # set up by the app's lifespan

    async def make(
        self, queue: str, title: str, *, body: str = "Hello.", sender: str = "",
        customer: str = "alice@customer.example", **kw: Any,
    ) -> str:  # fmt: skip
        """A ticket with one customer article; its number."""
        new = NewTicket(
            title=title, queue=queue, customer_user=customer, customer_id=customer,
            article=ArticleInput(
                sender="customer", from_=sender or f"Alice <{customer}>",
                to="support@example.com", subject=title, body=body,
            ),
            **kw,
        )  # fmt: skip
        async with self.db.transaction() as conn:
            return (await self.service.create(conn, new, actor=Actor.SYSTEM))[1]


async def two_queues(
    make_queue: Callable[..., Awaitable[int]], make_user: Callable[..., Awaitable[int]]
) -> dict[str, int]:
    """Queues Alpha (agent "anna" rw), Beta (nobody but admins) and Gamma (anna ro)."""
    ids = {name: await make_queue(name) for name in ("Alpha", "Beta", "Gamma")}
    await make_user("anna", queues={"Alpha": "rw", "Gamma": "ro"})
    return ids
