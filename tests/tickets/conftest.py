"""Fixtures for the ticket service: a provisioned database with agents, a service, tickets.

Tickets are made through the service itself (`create`), or through the postmaster worker when
a test compares the mail path with the service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.schema.database import Database, create_database
from pytrs.tickets import Actor, ArticleInput, NewTicket, TicketService
from pytrs.vocabulary.inbox import InboxItem

from .. import migrated
from ..conftest import make_config

SECRET = "0123456789abcdef-loop-secret-for-tests"
CUSTOMER = "Alice Customer <alice@customer.example>"
AGENTS = [
    {"login": "jdoe", "email": "jdoe@agents.example", "queues": ["Support"]},
    {"login": "asmith", "email": "asmith@agents.example", "queues": ["Support", "Sales"]},
]


def service_config(database: dict[str, Any], **overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "outbound": {"loop_secret": SECRET},
        "agents": AGENTS,
        "agent_mail": {"notify_new_ticket": False, "notify_follow_up": False},
    }
    settings.update(overrides)
    return make_config(database, **settings)


@dataclass
class Desk:
    """A migrated, provisioned database and a ticket service over it."""

    config: Config
    db: Database
    service: TicketService

    async def ticket(self, title: str = "Printer on fire", **kw: Any) -> tuple[int, str]:
        """A new ticket in Support from Alice with her first mail as its article."""
        new = NewTicket(
            title=title, queue=kw.pop("queue", "Support"),
            customer_user=kw.pop("customer_user", "alice@customer.example"),
            customer_id=kw.pop("customer_id", "alice@customer.example"),
            article=ArticleInput(
                sender="customer", from_=CUSTOMER, to="support@example.com", subject=title,
                body="Hello, the printer is on fire.\n", message_id=f"<{title.replace(' ', '.')}"
                "@customer.example>", raw=b"raw mail",
            ),
            **kw,
        )  # fmt: skip
        async with self.db.transaction() as conn:
            return await self.service.create(conn, new, actor=Actor.SYSTEM)

    async def deliver(self, raw: bytes, recipient: str = "support@example.com") -> None:
        """Store a mail in the inbox as the gateway would and route it with one worker."""
        async with self.db.transaction() as conn:
            await inbox_repo.store(conn, [InboxItem("smtp", raw, recipient=recipient)])
        addresses = AddressBook()
        await addresses.reload(self.db)
        await PostmasterWorker(self.config, self.db, addresses).drain()

    async def agent(self, login: str = "jdoe") -> Actor:
        async with self.db.connect() as conn:
            return await self.service.agent(conn, login)


async def open_desk(database_settings: dict[str, Any], **overrides: Any) -> Desk:
    config = service_config(database_settings, **overrides)
    db = create_database(config.database)
    await migrated.upgrade(db)
    await provision(db, config)
    return Desk(config, db, TicketService.from_config(config))


@pytest.fixture
async def desk(database_settings: dict[str, Any]) -> AsyncIterator[Desk]:
    found = await open_desk(database_settings)
    try:
        yield found
    finally:
        await found.db.close()
