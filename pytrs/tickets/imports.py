"""Tickets copied verbatim from another system: the bulk writer of `pytrs import znuny`.

Place in the flow: the ticket service's door for imported tickets (a ticket's rows change only
through `pytrs/tickets/`). Unlike every other writer it re-runs no ticket semantics: no auto
response, no escalation event, no history of its own besides one `Misc` entry per ticket saying
where it came from. The ticket, its articles (meta row, parsed fields, raw mail, attachments),
its history and its dynamic field values are stored as the source recorded them, with the
source's ids where they are free here; the importer (`pytrs.importers`) has already mapped
every other id (queues, states, agents …) to this database's.

Escalation clocks are computed, with what fell due in the other system counted as fired
(`settle_clocks`): agents are not sent a warning for every overdue ticket of the import.

One batch is one transaction of the caller's: a ticket is either there with everything it has,
or not at all, so an interrupted import resumes by asking which numbers are here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import escalation_due
from pytrs.schema.tables import (
    article,
    article_data_mime,
    article_data_mime_attachment,
    article_data_mime_plain,
    dynamic_field_value,
    link_relation,
    ticket,
    ticket_history,
)
from pytrs.tickets import escalation_index, history
from pytrs.tickets.escalation import Clock, due_events, fired

Row = dict[str, Any]


@dataclass
class ImportedArticle:
    """One article's rows in this database's shape; `row["id"]` is the source's id."""

    row: Row
    mime: Row | None = None
    plain: Row | None = None
    attachments: list[Row] = field(default_factory=list)
    values: list[Row] = field(default_factory=list)  # dynamic field values of the article


@dataclass
class ImportedTicket:
    """One ticket and everything it owns, ids mapped except its own and its articles'."""

    row: Row
    articles: list[ImportedArticle] = field(default_factory=list)
    history: list[Row] = field(default_factory=list)
    values: list[Row] = field(default_factory=list)  # dynamic field values of the ticket


@dataclass(frozen=True, slots=True)
class Present:
    """A ticket number that is here already: its id and when that ticket was created."""

    id: int
    created: datetime


async def numbers_present(conn: AsyncConnection, numbers: Sequence[str]) -> dict[str, Present]:
    """Which of the ticket numbers are here already, with their ids and creation times."""
    found: dict[str, Present] = {}
    for start in range(0, len(numbers), 500):
        chunk = list(numbers[start : start + 500])
        query = select(ticket.c.tn, ticket.c.id, ticket.c.create_time).where(ticket.c.tn.in_(chunk))
        found.update({tn: Present(int(i), at) for tn, i, at in await conn.execute(query)})
    return found


async def write_tickets(
    conn: AsyncConnection,
    tickets: Sequence[ImportedTicket],
    *,
    misc_type_id: int,
    renumber: bool = False,
    source: str = "Znuny",
) -> dict[int, int]:
    """Store `tickets` in `conn`'s transaction; returns source ticket id → id here for the
    tickets it wrote.

    A ticket keeps the source's id, and its articles theirs, when all of them are free here.
    One that clashes with a ticket pytrs made itself is left out (not in the result) unless
    `renumber`: the importer writes those last, once every source id that could be kept is
    taken, so that the new ids handed out here never land on an id a later batch would keep.
    Its history and values then follow its new ids. The caller has left out the tickets
    already here (by number).
    """
    ticket_ids = [t.row["id"] for t in tickets]
    article_ids = [a.row["id"] for t in tickets for a in t.articles]
    taken_tickets = await _taken(conn, ticket, ticket_ids)
    taken_articles = await _taken(conn, article, article_ids)
    mapped: dict[int, int] = {}
    kept, clashing = [], []
    for item in tickets:
        if item.row["id"] in taken_tickets or any(
            a.row["id"] in taken_articles for a in item.articles
        ):
            clashing.append(item)
        else:
            kept.append(item)
            mapped[item.row["id"]] = item.row["id"]
    await _write_kept(conn, kept, misc_type_id, source)
    if renumber:
        for item in clashing:
            mapped[item.row["id"]] = await _write_renumbered(conn, item, misc_type_id, source)
    return mapped


async def _next_id(conn: AsyncConnection, table: Any) -> int:
    return int(await conn.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1


async def _taken(conn: AsyncConnection, table: Any, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found |= set(await conn.scalars(select(table.c.id).where(table.c.id.in_(chunk))))
    return found


async def _write_kept(
    conn: AsyncConnection, tickets: Sequence[ImportedTicket], misc_type_id: int, source: str
) -> None:
    """Tickets whose ids and whose articles' ids are all free: a handful of bulk inserts."""
    if not tickets:
        return
    articles = [a for t in tickets for a in t.articles]
    await _insert(conn, ticket, [t.row for t in tickets])
    await _insert(conn, article, [a.row for a in articles])
    await _write_article_parts(conn, articles, {a.row["id"]: a.row["id"] for a in articles})
    await _insert(
        conn,
        ticket_history,
        [
            row
            for t in tickets
            for row in (*t.history, _imported_entry(t.row, misc_type_id, source))
        ],
    )
    await _insert(conn, dynamic_field_value, [v for t in tickets for v in t.values])


async def _write_renumbered(
    conn: AsyncConnection, item: ImportedTicket, misc_type_id: int, source: str
) -> int:
    """A ticket whose id (or an article's) is taken here: new ids, references followed."""
    # New ids one past the highest, not the engine's own: a PostgreSQL sequence has not yet
    # seen the ids inserted explicitly (in a dry run it is never moved past them).
    ticket_id = await _next_id(conn, ticket)
    await conn.execute(insert(ticket).values(item.row | {"id": ticket_id}))
    article_map: dict[int, int] = {}
    next_article = await _next_id(conn, article)
    for offset, part in enumerate(item.articles):
        article_map[part.row["id"]] = next_article + offset
        values = part.row | {"id": next_article + offset, "ticket_id": ticket_id}
        await conn.execute(insert(article).values(values))
    await _write_article_parts(conn, item.articles, article_map)
    entries = [*item.history, _imported_entry(item.row, misc_type_id, source)]
    await _insert(
        conn,
        ticket_history,
        [
            e | {"ticket_id": ticket_id, "article_id": article_map.get(e["article_id"])}
            if e.get("article_id")
            else e | {"ticket_id": ticket_id}
            for e in entries
        ],
    )
    await _insert(conn, dynamic_field_value, [v | {"object_id": ticket_id} for v in item.values])
    return ticket_id


async def _write_article_parts(
    conn: AsyncConnection, articles: Sequence[ImportedArticle], ids: Mapping[int, int]
) -> None:
    def owned(row: Row, source_id: int) -> Row:
        return {k: v for k, v in row.items() if k != "id"} | {"article_id": ids[source_id]}

    mime, plain, files, values = [], [], [], []
    for part in articles:
        source_id = part.row["id"]
        if part.mime is not None:
            mime.append(owned(part.mime, source_id))
        if part.plain is not None:
            plain.append(owned(part.plain, source_id))
        files += [owned(a, source_id) for a in part.attachments]
        values += [v | {"object_id": ids[source_id]} for v in part.values]
    await _insert(conn, article_data_mime, mime)
    await _insert(conn, article_data_mime_plain, plain)
    # One by one: attachments may be large, and one statement would bind them all at once.
    for row in files:
        await conn.execute(insert(article_data_mime_attachment).values(row))
    await _insert(conn, dynamic_field_value, values)


def _imported_entry(row: Row, misc_type_id: int, source: str) -> Row:
    """The one history entry pytrs adds: where the ticket came from, at the ticket's state."""
    _, name = history.imported(source)
    return {
        "name": name,
        "history_type_id": misc_type_id,
        "ticket_id": row["id"],
        "article_id": None,
        "type_id": row.get("type_id") or 1,
        "queue_id": row["queue_id"],
        "owner_id": row["user_id"],
        "priority_id": row["ticket_priority_id"],
        "state_id": row["ticket_state_id"],
        "create_time": row["change_time"],
        "create_by": 1,
        "change_time": row["change_time"],
        "change_by": 1,
    }


async def _insert(conn: AsyncConnection, table: Any, rows: Sequence[Row]) -> None:
    if rows:
        await conn.execute(insert(table), list(rows))


async def links_present(conn: AsyncConnection, columns: Sequence[str]) -> set[tuple[Any, ...]]:
    """Every stored link as the tuple of `columns` (to leave out the links already here)."""
    query = select(*(link_relation.c[name] for name in columns))
    return {tuple(row) for row in await conn.execute(query)}


async def write_links(conn: AsyncConnection, rows: Sequence[Row]) -> None:
    """Links between copied tickets, as the source recorded them (`link_relation` rows; the
    source's `TicketLinkAdd` history came with the tickets)."""
    await _insert(conn, link_relation, rows)


async def settle_clocks(conn: AsyncConnection, ticket_ids: Sequence[int], now: int) -> int:
    """Give imported tickets their escalation clocks, with every event already due at `now`
    recorded as fired: those deadlines passed while the ticket was in the other system, which
    warned about them there. Only deadlines still ahead notify (and a pending auto-close that
    is due still closes: that is a change the ticket owes, not a message). Returns how many
    clocks had past events settled."""
    if not ticket_ids:
        return 0
    await escalation_index.rebuild(conn, ticket_ids, now)
    settled = []
    for claimed in await escalation_due.load_claimed(conn, ticket_ids):
        clock = Clock(claimed.ticket_id, **claimed.clock)
        past = [e for e in due_events(clock, now) if e.kind != "pending"]
        if past:
            after = fired(clock, past)
            columns = {c: getattr(after, c) for c in escalation_due.CLOCK_COLUMNS}
            settled.append({"ticket_id": clock.ticket_id, "next_due": after.next_due(), **columns})
    await escalation_due.store_clocks(conn, settled)
    return len(settled)
