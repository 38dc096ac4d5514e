"""Reading tickets for people: the ticket list, one ticket with its articles, its history, an
article's stored mail, and the queue overview.

Place in the flow: read-only, beside the ticket service (which writes). `pytrs tickets` and
`pytrs queues` call these, and so can the web view later. Every function is one query per kind
of row, never one per listed row: the list is a keyset page over the ticket's primary key
(newest first), so page 1 and page 1,000 cost the same with 100,000 tickets; names (queue,
state, owner …) come joined in, not looked up per row. Results are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from pytrs.schema import storable
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import (
    ArticleSenderType,
    CommunicationChannel,
    TicketHistoryType,
    TicketLockType,
    TicketPriority,
    TicketState,
    TicketType,
    article,
    article_data_mime,
    article_data_mime_attachment,
    article_data_mime_plain,
    customer_user,
    queue,
    system_address,
    ticket,
    ticket_history,
    users,
)
from pytrs.tickets.errors import UnknownName
from pytrs.vocabulary import znuny

_state = cast(Table, TicketState.__table__)
_priority = cast(Table, TicketPriority.__table__)
_lock = cast(Table, TicketLockType.__table__)
_type = cast(Table, TicketType.__table__)
_sender_type = cast(Table, ArticleSenderType.__table__)
_history_type = cast(Table, TicketHistoryType.__table__)
_channel = cast(Table, CommunicationChannel.__table__)
_owner = users.alias("owner")
_responsible = users.alias("responsible")

_TYPE_NAMES = dict(znuny.STATE_TYPES)
# Znuny's "viewable" state types: a ticket in one of these still wants work. `--open` lists
# them; `--closed` lists every other ticket (closed, merged, removed).
OPEN_STATE_TYPES = ("new", "open", "pending reminder", "pending auto")
PENDING_STATE_TYPES = ("pending reminder", "pending auto")


# --- the list ---


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What `list_tickets` selects. Empty values select everything."""

    queue: str = ""
    state: str = ""  # a state name
    state_types: tuple[str, ...] = ()  # state type names (OPEN_STATE_TYPES …)
    exclude_state_types: tuple[str, ...] = ()
    customer: str = ""  # a customer user login or an address (case-insensitive)
    search: str = ""  # case-insensitive text in title, customer, article subject or From
    # Epoch seconds: only tickets whose earliest escalation is due by then (escalated or soon),
    # soonest first instead of newest first; 0 = no such filter.
    escalating_by: int = 0


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    tn: str
    title: str
    queue: str
    state: str
    state_type: str
    priority: str
    customer_user: str
    customer_id: str
    owner: str
    created: datetime
    changed: datetime


@dataclass(frozen=True, slots=True)
class TicketPage:
    rows: tuple[TicketRow, ...]
    next_before: str | None  # the TN to pass as `before` for the next page; None on the last


async def list_tickets(
    conn: AsyncConnection, where: TicketFilter, *, limit: int, before: int | None = None
) -> TicketPage:
    """Tickets matching `where`, newest first, at most `limit`; `before` is the id of the last
    ticket of the previous page (see `ticket_id`). Raises UnknownName for a filter naming a
    queue or state that does not exist (a TicketError, as the service's)."""
    conditions = await _conditions(conn, where)
    if where.escalating_by:
        # Through ix_ticket_escalation_time: what is due, not what is open.
        keys = (ticket.c.escalation_time, ticket.c.id)
        conditions += [
            ticket.c.escalation_time > 0,
            ticket.c.escalation_time <= where.escalating_by,
        ]
        if before is not None:
            conditions.append(tuple_(*keys) > tuple_(*await _escalation_key(conn, before)))
        order = [key.asc() for key in keys]
    else:
        if before is not None:
            conditions.append(ticket.c.id < before)
        order = [ticket.c.id.desc()]
    query = (
        _ticket_columns()
        .where(*conditions)
        .order_by(*order)
        .limit(limit + 1)  # one more tells whether there is a next page
    )
    rows = [_ticket_row(r) for r in await conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return TicketPage(tuple(rows), rows[-1].tn if more else None)


async def _escalation_key(conn: AsyncConnection, ticket_id: int) -> tuple[int, int]:
    """(escalation_time, id) of ticket `ticket_id`: where a page of escalating tickets
    continues from."""
    found = await conn.execute(select(ticket.c.escalation_time).where(ticket.c.id == ticket_id))
    return int(found.scalar_one_or_none() or 0), ticket_id


def _ticket_columns() -> Select[Any]:
    return (
        select(
            ticket.c.id,
            ticket.c.tn,
            ticket.c.title,
            queue.c.name.label("queue"),
            _state.c.name.label("state"),
            _state.c.type_id.label("state_type_id"),
            _priority.c.name.label("priority"),
            ticket.c.customer_user_id,
            ticket.c.customer_id,
            _owner.c.login.label("owner"),
            ticket.c.create_time,
            ticket.c.change_time,
        )
        .join(queue, queue.c.id == ticket.c.queue_id)
        .join(_state, _state.c.id == ticket.c.ticket_state_id)
        .join(_priority, _priority.c.id == ticket.c.ticket_priority_id)
        .outerjoin(_owner, _owner.c.id == ticket.c.user_id)
    )


def _ticket_row(r: Any) -> TicketRow:
    return TicketRow(
        id=int(r.id),
        tn=r.tn,
        title=r.title or "",
        queue=r.queue,
        state=r.state,
        state_type=_TYPE_NAMES.get(r.state_type_id, ""),
        priority=r.priority,
        customer_user=r.customer_user_id or "",
        customer_id=r.customer_id or "",
        owner=r.owner or "",
        created=r.create_time,
        changed=r.change_time,
    )


async def _conditions(conn: AsyncConnection, where: TicketFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `where`, on indexed columns where the filter allows: queue and
    state become ids (ix_ticket_queue_state), a customer becomes the logins it may be stored
    under (ix_ticket_customer_user_id)."""
    found: list[ColumnElement[bool]] = []
    if where.queue:
        found.append(ticket.c.queue_id == await _queue_id(conn, where.queue))
    states = await _states(conn)
    if where.state:
        if where.state not in states:
            raise UnknownName("state", where.state, list(states))
        found.append(ticket.c.ticket_state_id == states[where.state][0])
    if where.state_types:
        ids = [i for i, kind in states.values() if kind in where.state_types]
        found.append(ticket.c.ticket_state_id.in_(ids))
    if where.exclude_state_types:
        ids = [i for i, kind in states.values() if kind not in where.exclude_state_types]
        found.append(ticket.c.ticket_state_id.in_(ids))
    if where.customer:
        found.append(ticket.c.customer_user_id.in_(await _customer_logins(conn, where.customer)))
    if where.search:
        found.append(_search(where.search))
    return found


async def _queue_id(conn: AsyncConnection, name: str) -> int:
    # Any queue by name, valid or not: tickets stay in a queue the configuration retired.
    rows = {r.name: int(r.id) for r in await conn.execute(select(queue.c.name, queue.c.id))}
    if name not in rows:
        raise UnknownName("queue", name, list(rows))
    return rows[name]


async def _states(conn: AsyncConnection) -> dict[str, tuple[int, str]]:
    """Every state: name → (id, state type name)."""
    rows = await conn.execute(select(_state.c.name, _state.c.id, _state.c.type_id))
    return {r.name: (int(r.id), _TYPE_NAMES.get(r.type_id, "")) for r in rows}


async def _customer_logins(conn: AsyncConnection, customer: str) -> list[str]:
    """The values `ticket.customer_user_id` may hold for `customer`: the text itself (a login,
    or the sender's address, stored lower-cased, for senders who are no customer user) and the
    logins of customer users with that address."""
    text = customer.strip()
    rows = await conn.execute(
        select(customer_user.c.login).where(func.lower(customer_user.c.email) == text.lower())
    )
    return sorted({text, text.lower(), *rows.scalars()})


def _search(text: str) -> ColumnElement[bool]:
    """Case-insensitive substring search over the ticket's title and customer and its
    articles' Subject and From. Not bodies: that would read every article's text on every
    search. Case folding is the database's `lower()`: ASCII only on SQLite."""
    pattern = "%" + _escaped(text.lower()) + "%"

    def like(column: Any) -> ColumnElement[bool]:
        return cast(ColumnElement[bool], func.lower(column).like(pattern, escape="\\"))

    in_articles = exists(
        select(article.c.id)
        .join(article_data_mime, article_data_mime.c.article_id == article.c.id)
        .where(
            article.c.ticket_id == ticket.c.id,
            or_(like(article_data_mime.c.a_subject), like(article_data_mime.c.a_from)),
        )
    )
    return or_(
        like(ticket.c.title),
        like(ticket.c.customer_user_id),
        like(ticket.c.customer_id),
        in_articles,
    )


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def ticket_id(conn: AsyncConnection, tn: str) -> int | None:
    """The id of ticket number `tn`, or None."""
    if storable.clean(tn) != tn:  # a NUL, not UTF-8: stored numbers have none, and
        return None  # PostgreSQL refuses such a query parameter
    found = await conn.execute(select(ticket.c.id).where(ticket.c.tn == tn.strip()))
    value = found.scalar_one_or_none()
    return None if value is None else int(value)


# --- one ticket ---


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    size: int
    content_type: str
    disposition: str


@dataclass(frozen=True, slots=True)
class ArticleView:
    id: int
    sender_type: str  # agent, system, customer
    channel: str  # Email, Phone, Internal …
    visible: bool  # is_visible_for_customer
    from_: str
    to: str
    cc: str
    subject: str
    message_id: str
    in_reply_to: str
    created: datetime
    body: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class TicketDetail:
    """One ticket: what the list shows of it, the rest of its fields, and its articles."""

    ticket: TicketRow
    lock: str
    type: str
    responsible: str
    articles: tuple[ArticleView, ...] = ()
    merged_into: str = ""  # the ticket number a merged ticket went into


async def ticket_detail(conn: AsyncConnection, tn: str) -> TicketDetail | None:
    """Ticket number `tn` with every article, oldest first (attachments listed, not read)."""
    query = (
        _ticket_columns()
        .add_columns(
            _lock.c.name.label("lock"),
            _type.c.name.label("type"),
            _responsible.c.login.label("responsible"),
        )
        .outerjoin(_lock, _lock.c.id == ticket.c.ticket_lock_id)
        .outerjoin(_type, _type.c.id == ticket.c.type_id)
        .outerjoin(_responsible, _responsible.c.id == ticket.c.responsible_user_id)
        .where(ticket.c.tn == tn.strip())
    )
    r = (await conn.execute(query)).first()
    if r is None:
        return None
    row = _ticket_row(r)
    return TicketDetail(
        ticket=row,
        lock=r.lock or "",
        type=r.type or "",
        responsible=r.responsible or "",
        articles=await _articles(conn, row.id),
        merged_into=await merged_into(conn, row.id) if row.state_type == "merged" else "",
    )


def article_select() -> Select[Any]:
    """An article's fields as agents read them: sender type and channel by name, the
    customer-visible flag, the header fields, content type, text body and time (also the
    JSON API's article reads, `tickets.api_reads`)."""
    mime = article_data_mime
    return (
        select(
            article.c.id,
            _sender_type.c.name.label("sender_type"),
            _channel.c.name.label("channel"),
            article.c.is_visible_for_customer,
            mime.c.a_from,
            mime.c.a_to,
            mime.c.a_cc,
            mime.c.a_subject,
            mime.c.a_message_id,
            mime.c.a_in_reply_to,
            mime.c.a_content_type,
            mime.c.a_body,
            article.c.create_time,
        )
        .outerjoin(mime, mime.c.article_id == article.c.id)
        .outerjoin(_sender_type, _sender_type.c.id == article.c.article_sender_type_id)
        .outerjoin(_channel, _channel.c.id == article.c.communication_channel_id)
    )


def article_fields(r: Any) -> dict[str, Any]:
    """The fields of an `article_select` row that every article shape has, NULLs as ""."""
    return {
        "id": int(r.id),
        "sender_type": r.sender_type or "",
        "channel": r.channel or "",
        "visible": bool(r.is_visible_for_customer),
        "from_": r.a_from or "",
        "to": r.a_to or "",
        "cc": r.a_cc or "",
        "subject": r.a_subject or "",
        "message_id": r.a_message_id or "",
        "in_reply_to": r.a_in_reply_to or "",
        "created": r.create_time,
        "body": r.a_body or "",
    }


async def _articles(conn: AsyncConnection, ticket_id: int) -> tuple[ArticleView, ...]:
    rows = await conn.execute(
        article_select().where(article.c.ticket_id == ticket_id).order_by(article.c.id)
    )
    found = list(rows)
    attachments = await _attachments(conn, [int(r.id) for r in found])
    return tuple(
        ArticleView(**article_fields(r), attachments=attachments.get(int(r.id), ())) for r in found
    )


async def _attachments(
    conn: AsyncConnection, article_ids: Collection[int]
) -> dict[int, tuple[Attachment, ...]]:
    if not article_ids:
        return {}
    part = article_data_mime_attachment
    rows = await conn.execute(
        select(
            part.c.article_id,
            part.c.filename,
            part.c.content_size,
            part.c.content_type,
            part.c.disposition,
        )
        .where(part.c.article_id.in_(list(article_ids)))
        .order_by(part.c.id)
    )
    found: dict[int, list[Attachment]] = {}
    for r in rows:
        size = int(r.content_size) if (r.content_size or "").isdigit() else 0
        found.setdefault(int(r.article_id), []).append(
            Attachment(r.filename or "", size, r.content_type or "", r.disposition or "")
        )
    return {key: tuple(value) for key, value in found.items()}


# --- history and raw mail ---


async def merged_into(conn: AsyncConnection, ticket_id: int) -> str:
    """The number of the ticket `ticket_id` was merged into, from its newest `Merged` history
    entry (`%%sourceTN%%sourceID%%targetTN%%targetID`, on both tickets); "" if none."""
    query = (
        select(ticket_history.c.name)
        .join(_history_type, _history_type.c.id == ticket_history.c.history_type_id)
        .where(ticket_history.c.ticket_id == ticket_id, _history_type.c.name == "Merged")
        .order_by(ticket_history.c.id.desc())
        .limit(1)
    )
    name = (await conn.execute(query)).scalar_one_or_none() or ""
    parts = name.split("%%")
    # The source's own entry names it first; a ticket merged into is never merged itself.
    return parts[3] if len(parts) == 5 and parts[1] != parts[3] else ""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    time: datetime
    type: str  # the history type: NewTicket, StateUpdate, SendAnswer …
    name: str  # Znuny's `%%`-separated parameters
    who: str  # the login of the user who made the change
    article_id: int | None


async def history(conn: AsyncConnection, ticket_id: int) -> tuple[HistoryEntry, ...]:
    """The ticket's audit trail, oldest first."""
    rows = await conn.execute(
        select(
            ticket_history.c.create_time,
            _history_type.c.name.label("type"),
            ticket_history.c.name,
            users.c.login,
            ticket_history.c.article_id,
        )
        .join(_history_type, _history_type.c.id == ticket_history.c.history_type_id)
        .outerjoin(users, users.c.id == ticket_history.c.create_by)
        .where(ticket_history.c.ticket_id == ticket_id)
        .order_by(ticket_history.c.id)
    )
    return tuple(
        HistoryEntry(r.create_time, r.type, r.name, r.login or "", r.article_id) for r in rows
    )


@dataclass(frozen=True, slots=True)
class RawMail:
    ticket_id: int  # the ticket the article belongs to (it may be another one than asked)
    raw: bytes | None  # None when the article keeps no stored mail (a note)


async def article_raw(conn: AsyncConnection, article_id: int) -> RawMail | None:
    """The mail stored with article `article_id` (`article_data_mime_plain.body`), or None
    when there is no such article."""
    query = (
        select(article.c.ticket_id, article_data_mime_plain.c.body)
        .outerjoin(article_data_mime_plain, article_data_mime_plain.c.article_id == article.c.id)
        .where(article.c.id == article_id)
    )
    r = (await conn.execute(query)).first()
    if r is None:
        return None
    raw = shape_of(conn).stored_bytes("article_data_mime_plain", "body", r.body)
    return RawMail(int(r.ticket_id), raw)


# --- the queue overview ---


@dataclass(frozen=True, slots=True)
class QueueOverview:
    name: str
    addresses: tuple[str, ...]  # its valid system addresses
    new: int
    open: int
    pending: int
    oldest_open: datetime | None  # when the oldest ticket still open (new/open/pending) came


async def queue_overview(conn: AsyncConnection) -> tuple[QueueOverview, ...]:
    """Every valid queue by name: its system addresses and its open tickets by state type.

    The counts are one GROUP BY over (queue, state), the columns of ix_ticket_queue_state;
    the oldest open ticket of a queue is the one with the lowest id, read in one more query.
    """
    queues = list(
        await conn.execute(
            select(queue.c.id, queue.c.name).where(queue.c.valid_id == 1).order_by(queue.c.name)
        )
    )
    states = await _states(conn)
    open_ids = [i for i, kind in states.values() if kind in OPEN_STATE_TYPES]
    kind_of = {i: kind for i, kind in states.values()}
    counts = await conn.execute(
        select(
            ticket.c.queue_id,
            ticket.c.ticket_state_id,
            func.count().label("n"),
            func.min(ticket.c.id).label("first"),
        )
        .where(ticket.c.ticket_state_id.in_(open_ids))
        .group_by(ticket.c.queue_id, ticket.c.ticket_state_id)
    )
    tally: dict[int, dict[str, int]] = {}
    first: dict[int, int] = {}
    for r in counts:
        kind = kind_of[r.ticket_state_id]
        kind = "pending" if kind in PENDING_STATE_TYPES else kind
        per = tally.setdefault(r.queue_id, {})
        per[kind] = per.get(kind, 0) + int(r.n)
        first[r.queue_id] = min(first.get(r.queue_id, r.first), int(r.first))
    created = await _create_times(conn, first.values())
    addresses = await _addresses(conn)
    return tuple(
        QueueOverview(
            name=q.name,
            addresses=addresses.get(q.id, ()),
            new=tally.get(q.id, {}).get("new", 0),
            open=tally.get(q.id, {}).get("open", 0),
            pending=tally.get(q.id, {}).get("pending", 0),
            oldest_open=created.get(first[q.id]) if q.id in first else None,
        )
        for q in queues
    )


async def _create_times(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, datetime]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await conn.execute(
        select(ticket.c.id, ticket.c.create_time).where(ticket.c.id.in_(wanted))
    )
    return {int(r.id): r.create_time for r in rows}


async def _addresses(conn: AsyncConnection) -> dict[int, tuple[str, ...]]:
    rows = await conn.execute(
        select(system_address.c.queue_id, system_address.c.value0)
        .where(system_address.c.valid_id == 1)
        .order_by(system_address.c.value0)
    )
    found: dict[int, list[str]] = {}
    for r in rows:
        found.setdefault(int(r.queue_id), []).append(r.value0)
    return {key: tuple(value) for key, value in found.items()}
