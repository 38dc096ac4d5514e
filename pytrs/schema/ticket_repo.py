"""Ticket-side reads and counters for the postmaster: batch look-ups that feed routing.

One query per kind per batch (tickets by number, tickets by referenced Message-ID, customers by
address, queues), so the cost of routing does not grow with round trips per message.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Row, Select, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.parsers import message_id_md5
from pytrs.routing.decision import Known, TicketRef
from pytrs.schema.database import Database, conflict_insert, utcnow
from pytrs.schema.seed import FOLLOW_UP_IDS
from pytrs.schema.tables import (
    TicketState,
    TicketStateType,
    article,
    article_data_mime,
    customer_user,
    queue,
    ticket,
    ticket_number_counter,
)

_FOLLOW_UP_NAMES = {v: k for k, v in FOLLOW_UP_IDS.items()}
_state = cast(Table, TicketState.__table__)
_state_type = cast(Table, TicketStateType.__table__)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    id: int
    name: str
    follow_up: str


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    login: str
    customer_id: str


def _ticket_ref_query() -> Select[Any]:
    return (
        select(
            ticket.c.id, ticket.c.tn, queue.c.name.label("queue"), _state.c.name.label("state"),
            _state_type.c.name.label("state_type"), queue.c.follow_up_id,
        )
        .join(queue, queue.c.id == ticket.c.queue_id)
        .join(_state, _state.c.id == ticket.c.ticket_state_id)
        .join(_state_type, _state_type.c.id == _state.c.type_id)
    )  # fmt: skip


def _ref(row: Row[Any]) -> TicketRef:
    return TicketRef(
        row.id, row.tn, row.queue, row.state, row.state_type,
        _FOLLOW_UP_NAMES.get(row.follow_up_id, "possible"),
    )  # fmt: skip


async def load_known(
    conn: AsyncConnection, tns: Collection[str], message_ids: Collection[str]
) -> Known:
    """Tickets by number and by a stored article's Message-ID (looked up by its md5)."""
    known = Known()
    message_id_md5s = {message_id_md5(m): m for m in message_ids}
    if tns:
        rows = await conn.execute(_ticket_ref_query().where(ticket.c.tn.in_(list(tns))))
        known.by_tn = {r.tn: _ref(r) for r in rows}
    if message_id_md5s:
        # Znuny gives up when a Message-ID is stored on several tickets; pytrs takes the
        # oldest article, which is where the conversation started.
        first_article = (
            select(
                article_data_mime.c.a_message_id_md5.label("md5"),
                func.min(article.c.id).label("article_id"),
            )
            .join(article, article.c.id == article_data_mime.c.article_id)
            .where(article_data_mime.c.a_message_id_md5.in_(list(message_id_md5s)))
            .group_by(article_data_mime.c.a_message_id_md5)
            .subquery()
        )
        query = (
            _ticket_ref_query()
            .add_columns(first_article.c.md5)
            .join(article, article.c.ticket_id == ticket.c.id)
            .join(first_article, first_article.c.article_id == article.c.id)
        )
        for row in await conn.execute(query):
            known.by_message_id[message_id_md5s[row.md5]] = _ref(row)
    return known


async def load_queues(conn: AsyncConnection) -> dict[str, QueueInfo]:
    rows = await conn.execute(
        select(queue.c.id, queue.c.name, queue.c.follow_up_id).where(queue.c.valid_id == 1)
    )
    return {r.name: QueueInfo(r.id, r.name, _FOLLOW_UP_NAMES.get(r.follow_up_id, "possible"))
            for r in rows}  # fmt: skip


async def find_customers(conn: AsyncConnection, emails: Collection[str]) -> dict[str, CustomerInfo]:
    """Customer users by lower-cased address; several matches → the alphabetically last login
    wins, as in Znuny."""
    if not emails:
        return {}
    rows = await conn.execute(
        select(customer_user.c.login, customer_user.c.customer_id, customer_user.c.email)
        .where(func.lower(customer_user.c.email).in_(list(emails)), customer_user.c.valid_id == 1)
        .order_by(customer_user.c.login)
    )
    return {r.email.lower(): CustomerInfo(r.login, r.customer_id) for r in rows}


async def allocate_counter(conn: AsyncConnection, scope: str, count: int) -> int:
    """Reserve `count` consecutive counter values in `scope`; returns the first of them.

    The increment is a single UPDATE … RETURNING under the row lock, so concurrent workers
    and daemons never get the same value. Call it in a short transaction of its own where the
    engine allows (PostgreSQL), so the row lock is not held while a batch is written.
    """
    await conn.execute(
        conflict_insert(conn, ticket_number_counter)
        .values(counter_uid=scope, counter=0, create_time=utcnow())
        .on_conflict_do_nothing(index_elements=["counter_uid"])
    )
    result = await conn.execute(
        update(ticket_number_counter)
        .where(ticket_number_counter.c.counter_uid == scope)
        .values(counter=ticket_number_counter.c.counter + count)
        .returning(ticket_number_counter.c.counter)
    )
    last = int(result.scalar_one())
    return last - count + 1


def counter_scope(generator_scope: str, daily: bool, day: date) -> str:
    return f"{generator_scope}:{day:%Y%m%d}" if daily else generator_scope


async def allocate_counter_committed(db: Database, scope: str, count: int) -> int:
    async with db.transaction() as conn:
        return await allocate_counter(conn, scope, count)
