"""Test helpers: build mail, talk SMTP through smtplib (in a thread), read back tickets."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from collections import Counter
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import func, insert, select, text, update

from pytrs.schema import generations
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import (
    Article,
    ArticleDataMime,
    Queue,
    Ticket,
    TicketHistory,
    TicketHistoryType,
    TicketState,
    article,
    article_data_mime,
    inbox,
    sla,
    ticket,
)


def make_mail(
    *,
    subject: str = "Printer on fire",
    sender: str = "Alice Customer <alice@customer.example>",
    to: str = "support@example.com",
    cc: str = "",
    body: str = "Hello, the printer is on fire.\n",
    message_id: str | None = None,
    in_reply_to: str = "",
    references: str = "",
    extra: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for key, value in (extra or {}).items():
        msg[key] = value
    msg.set_content(body)
    # CRLF line ends, as mail travels over SMTP.
    return msg.as_bytes(policy=policy.SMTP)


def unique_id(domain: str = "customer.example") -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def _send(port: int, raw: bytes, sender: str, rcpts: list[str], lmtp: bool) -> dict[str, Any]:
    cls = smtplib.LMTP if lmtp else smtplib.SMTP
    with cls("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(sender, rcpts, raw)


async def send(
    port: int, raw: bytes, rcpts: list[str] | str = "support@example.com",
    sender: str = "alice@customer.example", *, lmtp: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """sendmail through smtplib in a thread (raises smtplib's exceptions)."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    return await asyncio.to_thread(_send, port, raw, sender, rcpts, lmtp)


async def count(db: Database, table: Any, *where: Any) -> int:
    async with db.connect() as conn:
        query = select(func.count()).select_from(table)
        if where:
            query = query.where(*where)
        return int((await conn.execute(query)).scalar_one())


async def inbox_states(db: Database) -> dict[str, int]:
    async with db.connect() as conn:
        rows = await conn.execute(select(inbox.c.state, func.count()).group_by(inbox.c.state))
        return {state: n for state, n in rows}


async def all_processed(db: Database) -> bool:
    states = await inbox_states(db)
    return bool(states) and states.get("pending", 0) == 0


async def tickets(db: Database) -> list[dict[str, Any]]:
    """Every ticket with its queue and state names, oldest first."""
    state = TicketState.__table__
    queue = Queue.__table__
    async with db.connect() as conn:
        rows = await conn.execute(
            select(ticket, queue.c.name.label("queue"), state.c.name.label("state"))
            .join(queue, queue.c.id == ticket.c.queue_id)
            .join(state, state.c.id == ticket.c.ticket_state_id)
            .order_by(ticket.c.id)
        )
        return [r._asdict() for r in rows]


async def articles(db: Database, ticket_id: int | None = None) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        query = (
            select(article, article_data_mime)
            .join(article_data_mime, article_data_mime.c.article_id == article.c.id)
            .order_by(article.c.id)
        )
        if ticket_id is not None:
            query = query.where(article.c.ticket_id == ticket_id)
        return [r._asdict() for r in await conn.execute(query)]


async def history(db: Database, ticket_id: int) -> list[tuple[str, str]]:
    types = TicketHistoryType.__table__
    hist = TicketHistory.__table__
    async with db.connect() as conn:
        rows = await conn.execute(
            select(types.c.name, hist.c.name)
            .join(types, types.c.id == hist.c.history_type_id)
            .where(hist.c.ticket_id == ticket_id)
            .order_by(hist.c.id)
        )
        return [(kind, name) for kind, name in rows]


async def inbox_ids(db: Any) -> Counter[str]:
    async with db.connect() as conn:
        rows = await conn.execute(text("SELECT message_id FROM inbox_message"))
        return Counter(r[0] for r in rows)


def put(dovecot: Any, mailbox: tuple[str, str], count: int, **kw: Any) -> list[str]:
    ids = [unique_id() for _ in range(count)]
    for message_id in ids:
        dovecot.append(*mailbox, make_mail(subject=f"fetched {message_id}", message_id=message_id),
                       **kw)  # fmt: skip
    return ids


__all__ = [
    "Article", "ArticleDataMime", "Ticket", "all_processed", "articles", "count", "history",
    "inbox_states", "make_mail", "send", "tickets", "unique_id",
]  # fmt: skip


async def add_sla(db: Database, name: str, *, valid: bool = True) -> int:
    """An `sla` row as provisioning writes one from `[[slas]]` (a one-hour first response on
    no calendar: 24/7), with the ESCALATION generation bumped as provisioning does."""
    async with db.transaction() as conn:
        made = await conn.execute(
            insert(sla).values(
                name=name, calendar_name="", first_response_time=60, update_time=0,
                solution_time=0, valid_id=1 if valid else 2, create_time=utcnow(),
                change_time=utcnow(),
            )
        )  # fmt: skip
        await generations.bump(conn, generations.ESCALATION)
        return int(made.inserted_primary_key[0])


async def set_deadlines(db: Database, tn: str, **values: Any) -> None:
    """Ticket `tn`'s `escalation_{response,update,solution}_time` (and `sla_id`, `until_time`
    …) as the escalation index stores them, `escalation_time` the earliest deadline: for tests
    of what is shown, not of how it is computed."""
    kinds = ("response", "update", "solution")
    deadlines = [values.get(f"escalation_{kind}_time", 0) for kind in kinds]
    earliest = min((d for d in deadlines if d), default=0)
    async with db.transaction() as conn:
        await conn.execute(
            update(ticket).where(ticket.c.tn == tn).values(escalation_time=earliest, **values)
        )
