"""Ticket-side reads and counters for the postmaster: queues, customers, users, fields, numbers.

One query per kind per batch, so the cost of routing does not grow with round trips per
message. What routing needs to know about existing tickets is loaded by `known_repo`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from pytrs.schema import agent_address, storable
from pytrs.schema.database import Database, conflict_insert, utcnow
from pytrs.schema.tables import (
    TicketPriority,
    TicketState,
    TicketStateType,
    article,
    article_data_mime,
    customer_preferences,
    customer_user,
    dynamic_field,
    dynamic_field_value,
    queue,
    sla,
    ticket,
    ticket_number_counter,
    users,
)
from pytrs.vocabulary.znuny import FOLLOW_UP_IDS, SENDER_CUSTOMER

FOLLOW_UP_NAMES = {v: k for k, v in FOLLOW_UP_IDS.items()}


@dataclass(frozen=True, slots=True)
class QueueInfo:
    id: int
    name: str
    follow_up: str
    follow_up_lock: bool = False


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    login: str
    customer_id: str


# Statements the postmaster runs every batch, built once with their values bound at execution,
# so that SQLAlchemy derives each one's cache key once rather than per batch.
_VALID_QUEUES = select(
    queue.c.id, queue.c.name, queue.c.follow_up_id, queue.c.follow_up_lock
).where(queue.c.valid_id == 1)
# `lower()` has no type of its own: the addresses are bound as text, as a list of str would be.
_EMAILS = bindparam("emails", expanding=True, type_=String)


def _agents_by_email(email: ColumnElement[Any]) -> Select[Any]:
    return select(email.label("email"), users.c.login).where(
        func.lower(email).in_(_EMAILS), users.c.valid_id == 1
    )


# In pytrs's own database and beside Znuny (the address a preference: `agent_address`).
_AGENTS_BY_EMAIL = _agents_by_email(users.c.email)
_AGENTS_BY_PREFERENCE = _agents_by_email(agent_address.address_from_preferences())
_CUSTOMERS_BY_EMAIL = (
    select(customer_user.c.login, customer_user.c.customer_id, customer_user.c.email)
    .where(
        func.lower(customer_user.c.email).in_(_EMAILS),
        customer_user.c.valid_id == 1,
    )
    .order_by(customer_user.c.login)
)
_EXISTING_NUMBERS = select(ticket.c.tn).where(ticket.c.tn.in_(bindparam("tns", expanding=True)))


async def load_queues(conn: AsyncConnection) -> dict[str, QueueInfo]:
    rows = await conn.execute(_VALID_QUEUES)
    return {
        r.name: QueueInfo(
            r.id, r.name, FOLLOW_UP_NAMES.get(r.follow_up_id, "possible"), bool(r.follow_up_lock)
        )
        for r in rows
    }


async def valid_users(conn: AsyncConnection) -> dict[str, int]:
    """Valid agents' ids by login (X-PyTRS-Owner / -Responsible name agents)."""
    rows = await conn.execute(select(users.c.login, users.c.id).where(users.c.valid_id == 1))
    return {r.login: int(r.id) for r in rows}


async def valid_slas(conn: AsyncConnection) -> dict[str, int]:
    """Valid SLAs' ids by name (X-PyTRS-SLA names an SLA)."""
    rows = await conn.execute(select(sla.c.name, sla.c.id).where(sla.c.valid_id == 1))
    return {r.name: int(r.id) for r in rows}


async def agents_by_email(conn: AsyncConnection, emails: Collection[str]) -> dict[str, str]:
    """Valid agents' logins by lower-cased e-mail address, for the given addresses."""
    emails = _comparable(emails)
    if not emails:
        return {}
    query = _AGENTS_BY_PREFERENCE if agent_address.in_preferences(conn) else _AGENTS_BY_EMAIL
    rows = await conn.execute(query, {"emails": [e.lower() for e in emails]})
    found = ((agent_address.text_of(r.email), r.login) for r in rows)
    return {email.lower(): login for email, login in found if email}


@dataclass(frozen=True, slots=True)
class TicketSummary:
    """A ticket as answers and notifications describe it."""

    id: int
    tn: str
    title: str
    queue: str
    state: str
    state_type: str
    priority: str
    customer_user: str
    customer_id: str
    customer_email: str  # the customer user's address, or the free-text customer if an address
    first_name: str = ""
    last_name: str = ""
    known_customer: bool = False
    # The newest customer-visible article from the customer's side: what an answer threads to.
    last_customer_message_id: str = ""
    last_customer_references: str = ""
    customer_language: str = ""  # the customer user's UserLanguage preference
    # Ids as the ticket's history rows record them.
    queue_id: int = 1
    state_id: int = 1
    priority_id: int = 3
    owner_id: int = 1
    type_id: int = 1
    # Valid ticket dynamic fields with a value, by name (several values joined with ", ");
    # loaded for the customer side only.
    dynamic_fields: Mapping[str, str] = field(default_factory=dict)


async def ticket_summaries(
    conn: AsyncConnection, ids: Collection[int], *, customer_side: bool = True
) -> dict[int, TicketSummary]:
    """Current summaries of tickets `ids` (as this transaction sees them). Without
    `customer_side`, two queries fewer: no last customer message to thread to and no customer
    language (mail to agents, such as the scheduler's notifications, needs neither)."""
    if not ids:
        return {}
    state = TicketState.__table__
    state_type = TicketStateType.__table__
    priority = TicketPriority.__table__
    rows = await conn.execute(
        select(
            ticket.c.id, ticket.c.tn, ticket.c.title, queue.c.name.label("queue"),
            state.c.name.label("state"), state_type.c.name.label("state_type"),
            priority.c.name.label("priority"), ticket.c.customer_user_id, ticket.c.customer_id,
            customer_user.c.email, customer_user.c.first_name, customer_user.c.last_name,
            ticket.c.queue_id, ticket.c.ticket_state_id, ticket.c.ticket_priority_id,
            ticket.c.user_id, ticket.c.type_id,
        )
        .join(queue, queue.c.id == ticket.c.queue_id)
        .join(state, state.c.id == ticket.c.ticket_state_id)
        .join(state_type, state_type.c.id == state.c.type_id)
        .join(priority, priority.c.id == ticket.c.ticket_priority_id)
        .outerjoin(customer_user, customer_user.c.login == ticket.c.customer_user_id)
        .where(ticket.c.id.in_(list(ids)))
    )  # fmt: skip
    latest = await _last_customer_articles(conn, ids) if customer_side else {}
    languages = await _customer_languages(conn, ids) if customer_side else {}
    fields = await _dynamic_field_values(conn, ids) if customer_side else {}
    found: dict[int, TicketSummary] = {}
    for r in rows:
        login = r.customer_user_id or ""
        email = r.email or (login if "@" in login else "")
        message_id, references = latest.get(r.id, ("", ""))
        found[r.id] = TicketSummary(
            r.id, r.tn, r.title or "", r.queue, r.state, r.state_type, r.priority, login,
            r.customer_id or "", email, r.first_name or "", r.last_name or "", r.email is not None,
            message_id, references, languages.get(login, ""), r.queue_id, r.ticket_state_id,
            r.ticket_priority_id, r.user_id, r.type_id or 1, fields.get(r.id, {}),
        )  # fmt: skip
    return found


async def _dynamic_field_values(
    conn: AsyncConnection, ids: Collection[int]
) -> dict[int, dict[str, str]]:
    """Ticket id → {field name: value} of the valid ticket dynamic fields set on tickets `ids`
    (text, number or date; a field with several values lists them in order, joined by ", ")."""
    dfv, df = dynamic_field_value.c, dynamic_field.c
    rows = await conn.execute(
        select(dfv.object_id, df.name, dfv.value_text, dfv.value_int, dfv.value_date)
        .join(dynamic_field, df.id == dfv.field_id)
        .where(dfv.object_id.in_(list(ids)), df.valid_id == 1, df.object_type == "Ticket")
        .order_by(dfv.object_id, df.name, dfv.id)
    )
    found: dict[int, dict[str, list[str]]] = {}
    for r in rows:
        value = r.value_text if r.value_text is not None else r.value_int
        if value is None and r.value_date is not None:
            value = r.value_date.strftime("%Y-%m-%d %H:%M:%S")
        if value is not None:
            found.setdefault(int(r.object_id), {}).setdefault(r.name, []).append(str(value))
    return {t: {name: ", ".join(v) for name, v in named.items()} for t, named in found.items()}


async def _customer_languages(conn: AsyncConnection, ids: Collection[int]) -> dict[str, str]:
    """UserLanguage of the customer users of tickets `ids`, by login."""
    logins = select(ticket.c.customer_user_id).where(ticket.c.id.in_(list(ids)))
    rows = await conn.execute(
        select(customer_preferences.c.user_id, customer_preferences.c.preferences_value).where(
            customer_preferences.c.user_id.in_(logins),
            customer_preferences.c.preferences_key == "UserLanguage",
        )
    )
    return {r.user_id: r.preferences_value or "" for r in rows}


def _newest_customer_articles(ids: Collection[int]) -> Select[Any]:
    """The id of each ticket's newest customer-visible article from the customer's side."""
    return (
        select(func.max(article.c.id))
        .where(
            article.c.ticket_id.in_(list(ids)),
            article.c.article_sender_type_id == SENDER_CUSTOMER,
            article.c.is_visible_for_customer == 1,
        )
        .group_by(article.c.ticket_id)
    )


async def _last_customer_articles(
    conn: AsyncConnection, ids: Collection[int]
) -> dict[int, tuple[str, str]]:
    newest = _newest_customer_articles(ids)
    rows = await conn.execute(
        select(article.c.ticket_id, article_data_mime.c.a_message_id,
               article_data_mime.c.a_references)
        .join(article_data_mime, article_data_mime.c.article_id == article.c.id)
        .where(article.c.id.in_(newest))
    )  # fmt: skip
    return {r.ticket_id: (r.a_message_id or "", r.a_references or "") for r in rows}


async def dynamic_field_ids(conn: AsyncConnection) -> dict[str, int]:
    """Valid ticket dynamic fields by name."""
    rows = await conn.execute(
        select(dynamic_field.c.name, dynamic_field.c.id).where(
            dynamic_field.c.valid_id == 1, dynamic_field.c.object_type == "Ticket"
        )
    )
    return {r.name: int(r.id) for r in rows}


async def find_customers(conn: AsyncConnection, emails: Collection[str]) -> dict[str, CustomerInfo]:
    """Customer users by lower-cased address; several matches → the alphabetically last login
    wins, as in Znuny."""
    emails = _comparable(emails)
    if not emails:
        return {}
    rows = await conn.execute(_CUSTOMERS_BY_EMAIL, {"emails": list(emails)})
    return {r.email.lower(): CustomerInfo(r.login, r.customer_id) for r in rows}


def _comparable(values: Collection[str]) -> list[str]:
    # A value holding a NUL or bytes that are not UTF-8 matches nothing stored (stored values
    # were cleaned), and PostgreSQL would refuse it as a query parameter: leave it out.
    return [v for v in values if storable.clean(v) == v]


async def existing_numbers(conn: AsyncConnection, tns: Collection[str]) -> set[str]:
    """Which of `tns` are already ticket numbers."""
    if not tns:
        return set()
    rows = await conn.execute(_EXISTING_NUMBERS, {"tns": list(tns)})
    return set(rows.scalars())


async def allocate_counter(conn: AsyncConnection, scope: str, count: int) -> int:
    """Reserve `count` consecutive counter values in `scope`; returns the first of them.

    The increment is a single INSERT … ON CONFLICT DO UPDATE … RETURNING under the row lock,
    so concurrent workers and daemons never get the same value. Call it in a short transaction
    of its own where the engine allows (PostgreSQL), so the row lock is not held while a batch
    is written.
    """
    # A scope's first allocation creates its row; every later one adds to it.
    result = await conn.execute(
        conflict_insert(conn, ticket_number_counter)
        .values(counter_uid=scope, counter=count, create_time=utcnow())
        .on_conflict_do_update(
            index_elements=["counter_uid"],
            set_={"counter": ticket_number_counter.c.counter + count},
        )
        .returning(ticket_number_counter.c.counter)
    )
    last = int(result.scalar_one())
    return last - count + 1


def counter_scope(generator_scope: str, daily: bool, day: date) -> str:
    return f"{generator_scope}:{day:%Y%m%d}" if daily else generator_scope


async def allocate_counter_committed(db: Database, scope: str, count: int) -> int:
    async with db.transaction() as conn:
        return await allocate_counter(conn, scope, count)


async def allocate_counter_for(db: Database, conn: AsyncConnection, scope: str, count: int) -> int:
    """`allocate_counter` for a batch being written in `conn`: in a short transaction of its
    own where the engine has one to spare (the counter's row lock is then not held while the
    batch is written), else in `conn`."""
    if db.side_transactions:
        return await allocate_counter_committed(db, scope, count)
    return await allocate_counter(conn, scope, count)


@dataclass(frozen=True, slots=True)
class CustomerArticle:
    """The newest customer-visible article from the customer's side: the mail an
    auto-response to the ticket would answer (the web's preview), the text an agent's
    answer quotes (the ticket service)."""

    subject: str
    from_: str
    to: str
    cc: str
    body: str
    message_id: str
    created: datetime | None


async def last_customer_article(conn: AsyncConnection, ticket_id: int) -> CustomerArticle | None:
    """Ticket `ticket_id`'s newest customer article, or None when it has none."""
    newest = _newest_customer_articles([ticket_id])
    mime = article_data_mime.c
    row = (
        await conn.execute(
            select(mime.a_subject, mime.a_from, mime.a_to, mime.a_cc, mime.a_body,
                   mime.a_message_id, article.c.create_time)
            .join(article, article.c.id == mime.article_id)
            .where(mime.article_id.in_(newest))
        )
    ).first()  # fmt: skip
    if row is None:
        return None
    return CustomerArticle(
        row.a_subject or "", row.a_from or "", row.a_to or "", row.a_cc or "",
        row.a_body or "", row.a_message_id or "", row.create_time,
    )  # fmt: skip
