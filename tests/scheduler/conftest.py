"""Fixtures of the scheduler tests: a provisioned database with agents, tickets with clocks,
and a due scanner built as the daemon builds it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.scheduler.due_scan import DueScanner
from pytrs.scheduler.notifications import Notifier
from pytrs.schema import generations
from pytrs.schema.database import Database
from pytrs.schema.escalation_due import CLOCK_COLUMNS
from pytrs.schema.tables import outbox, queue, ticket, ticket_escalation, ticket_history
from pytrs.tickets.model import Actor, ArticleInput, NewTicket, TicketUpdate
from pytrs.tickets.service import TicketService
from pytrs.vocabulary import znuny

from ..conftest import make_config

LOOP_SECRET = "0123456789abcdef-scheduler-tests"
AGENTS = [
    {"login": "jdoe", "email": "jdoe@agents.example", "queues": ["Support"]},
    {"login": "asmith", "email": "asmith@agents.example", "queues": ["Support"]},
]


def scheduler_config(database: dict[str, Any], **overrides: Any) -> Config:
    """Queue Support with a 60-minute first response warned at 50 %, agents on it."""
    settings: dict[str, Any] = {
        "outbound": {"loop_secret": LOOP_SECRET},
        "agents": AGENTS,
        "queues": [
            {"name": "Support", "first_response_minutes": 60, "notify_before_percent": 50},
            {"name": "Sales", "follow_up": "new_ticket"},
            {"name": "Billing", "follow_up": "reject"},
        ],
    }
    settings.update(overrides)
    return make_config(database, **settings)


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    return scheduler_config(database_settings)


@pytest.fixture
async def provisioned(db: Database, config: Config) -> Database:
    await provision(db, config)
    await set_targets(db, "Support", response=60, notify=50)
    return db


async def set_targets(db: Database, name: str, **targets: int) -> None:
    """Queue `name`'s escalation targets in its Znuny columns (minutes, percent), with the
    ESCALATION generation bumped, as provisioning writes `[[queues]]`'s."""
    columns = {"response": "first_response_time", "notify": "first_response_notify",
               "update": "update_time", "solution": "solution_time"}  # fmt: skip
    async with db.transaction() as conn:
        await conn.execute(
            update(queue)
            .where(queue.c.name == name)
            .values({columns[k]: v for k, v in targets.items()})
        )
        await generations.bump(conn, generations.ESCALATION)


@pytest.fixture
def service(config: Config) -> TicketService:
    return TicketService.from_config(config)


@pytest.fixture
def scanner(provisioned: Database, config: Config, service: TicketService) -> DueScanner:
    return DueScanner(provisioned, service, Notifier(config, service.composer))


async def new_ticket(
    db: Database, service: TicketService, *, queue: str = "Support", title: str = "Printer on fire",
    owner: str | None = None,
) -> int:  # fmt: skip
    """A ticket opened by a customer's mail; its id."""
    article = ArticleInput(sender="customer", from_="alice@customer.example", subject=title,
                           body="It burns.")  # fmt: skip
    new = NewTicket(title=title, queue=queue, customer_user="alice@customer.example",
                    owner=owner, article=article)  # fmt: skip
    async with db.transaction() as conn:
        ticket_id, _tn = await service.create(conn, new, actor=Actor.SYSTEM)
    return ticket_id


async def set_clock(db: Database, ticket_id: int, **values: int) -> dict[str, int]:
    """Give the ticket the clock row `values` (next_due as `Clock.next_due` has it)."""
    row = {c: int(values.get(c, 0)) for c in CLOCK_COLUMNS}
    due = [row[f"{k}_notify"] for k in ("response", "update", "solution")
           if row[f"{k}_notify"] and not row[f"{k}_stage"]]  # fmt: skip
    due += [row[f"{k}_time"] for k in ("response", "update", "solution")
            if row[f"{k}_time"] and row[f"{k}_stage"] < 2]  # fmt: skip
    if row["pending_time"] and not row["pending_stage"]:
        due.append(row["pending_time"])
    async with db.transaction() as conn:
        await conn.execute(
            delete(ticket_escalation).where(ticket_escalation.c.ticket_id == ticket_id)
        )
        await conn.execute(
            insert(ticket_escalation).values(ticket_id=ticket_id, next_due=min(due, default=None),
                                             **row)
        )  # fmt: skip
    return row


async def clock_row(db: Database, ticket_id: int) -> dict[str, Any] | None:
    async with db.connect() as conn:
        found = (
            await conn.execute(
                select(ticket_escalation).where(ticket_escalation.c.ticket_id == ticket_id)
            )
        ).first()
    return dict(found._mapping) if found is not None else None


async def history_kinds(db: Database, ticket_id: int, prefix: str = "") -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(
            select(ticket_history.c.history_type_id, ticket_history.c.name)
            .where(ticket_history.c.ticket_id == ticket_id)
            .order_by(ticket_history.c.id)
        )
        kinds = [znuny.HISTORY_TYPES[r.history_type_id - 1] for r in rows]
    return [k for k in kinds if k.startswith(prefix)]


async def notifications(db: Database, ticket_id: int | None = None) -> list[dict[str, Any]]:
    query = select(outbox.c.ticket_id, outbox.c.recipients, outbox.c.raw, outbox.c.kind).where(
        outbox.c.kind == "notification"
    )
    if ticket_id is not None:
        query = query.where(outbox.c.ticket_id == ticket_id)
    async with db.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query.order_by(outbox.c.id))]


async def set_state(
    db: Database, service: TicketService, ticket_id: int, state: str, until: int | None = None
) -> None:
    change = TicketUpdate(state=state, pending_until=until)
    async with db.transaction() as conn:
        await service.update(conn, ticket_id, change, actor=Actor.SYSTEM)


async def state_of(db: Database, ticket_id: int) -> str:
    async with db.connect() as conn:
        state_id = await conn.scalar(
            select(ticket.c.ticket_state_id).where(ticket.c.id == ticket_id)
        )
    return {i: name for name, i in znuny.STATE_IDS.items()}[state_id]


def epoch() -> int:
    return int(time.time())
