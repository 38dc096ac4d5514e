"""Reading tickets for the JSON API: what a ticket shows beside its record (escalation times,
links, article count, the ticket it was merged into) and its articles a page at a time.

Place in the flow: read-only, beside `tickets.queries` (the command line's reads) and
`tickets.article_reads` (what an article keeps beside its text). The API's ticket and article
resources call these after the caller's access to the ticket was checked
(`web/api/ticket_access.py`); every function is one query per kind of row. Articles are paged
by keyset on their id (oldest first), so a ticket with thousands of articles costs the same
on its last page as on its first.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.tables import (
    article,
    link_relation,
    ticket,
)
from pytrs.tickets import links
from pytrs.tickets.queries import article_fields, article_select, merged_into

_LINK_NAMES = {i: name for name, i in links.TYPES.items()}


@dataclass(frozen=True, slots=True)
class Link:
    """Another ticket linked to this one; `role` is what the other ticket is to this one:
    "parent", "child" (ParentChild links) or "normal"."""

    tn: str
    kind: str
    role: str


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What the API shows of a ticket beside its record."""

    escalation: int  # epoch seconds of the earliest escalation; 0 = none
    escalation_response: int
    escalation_update: int
    escalation_solution: int
    articles: int
    links: tuple[Link, ...]
    merged_into: str  # the number of the ticket a merged ticket went into, or ""


async def ticket_facts(
    conn: AsyncConnection, ticket_id: int, state_type: str, readable: Collection[int]
) -> TicketFacts:
    """The escalation times, article count, links and merge target of ticket `ticket_id`;
    linked tickets and a merge target outside the `readable` queues are left out (their
    numbers would tell that they exist)."""
    times = (
        await conn.execute(
            select(
                ticket.c.escalation_time,
                ticket.c.escalation_response_time,
                ticket.c.escalation_update_time,
                ticket.c.escalation_solution_time,
            ).where(ticket.c.id == ticket_id)
        )
    ).one()
    count = await conn.scalar(
        select(func.count()).select_from(article).where(article.c.ticket_id == ticket_id)
    )
    response, update, solution = (int(t or 0) for t in times[1:])
    return TicketFacts(
        escalation=int(times[0] or 0),
        escalation_response=response,
        escalation_update=update,
        escalation_solution=solution,
        articles=int(count or 0),
        links=await ticket_links(conn, ticket_id, readable),
        merged_into=await _merge_target(conn, ticket_id, readable)
        if state_type == "merged"
        else "",
    )


async def _merge_target(conn: AsyncConnection, ticket_id: int, readable: Collection[int]) -> str:
    """The number of the ticket `ticket_id` was merged into, if it is in a readable queue."""
    target = await merged_into(conn, ticket_id)
    if not target:
        return ""
    found = await conn.scalar(
        select(ticket.c.id).where(ticket.c.tn == target, ticket.c.queue_id.in_(list(readable)))
    )
    return target if found is not None else ""


async def ticket_links(
    conn: AsyncConnection, ticket_id: int, readable: Collection[int]
) -> tuple[Link, ...]:
    """The tickets of `readable` queues linked to `ticket_id` (valid links), by number."""
    key = str(ticket_id)
    rel = link_relation
    object_id = await links.ticket_object_id(conn)
    rows = await conn.execute(
        select(rel.c.source_key, rel.c.target_key, rel.c.type_id).where(
            rel.c.source_object_id == object_id,
            rel.c.target_object_id == object_id,
            rel.c.state_id == links.STATE_VALID,
            or_(rel.c.source_key == key, rel.c.target_key == key),
        )
    )
    others: dict[int, tuple[str, str]] = {}
    for source, target, type_id in rows:
        kind = _LINK_NAMES.get(int(type_id), str(type_id))
        other = target if source == key else source
        if not other.isdigit():
            continue
        # ParentChild: the source is the parent (a merge target is the merged ticket's).
        role = "normal" if kind == "Normal" else ("child" if source == key else "parent")
        others[int(other)] = (kind, role)
    if not others:
        return ()
    numbers = dict(
        (
            await conn.execute(
                select(ticket.c.id, ticket.c.tn).where(
                    ticket.c.id.in_(list(others)), ticket.c.queue_id.in_(list(readable))
                )
            )
        ).all()
    )
    found = [Link(numbers[i], *others[i]) for i in sorted(others) if i in numbers]
    return tuple(found)


# --- articles ---


@dataclass(frozen=True, slots=True)
class ArticleText:
    """One article's header fields and text body (its attachments are read apart)."""

    id: int
    sender_type: str  # agent, system, customer
    channel: str  # email, phone, internal
    visible: bool  # is_visible_for_customer
    from_: str
    to: str
    cc: str
    subject: str
    message_id: str
    in_reply_to: str
    content_type: str
    created: datetime
    body: str


def _article(r: Any) -> ArticleText:
    fields = article_fields(r)
    fields["channel"] = fields["channel"].lower()
    return ArticleText(**fields, content_type=r.a_content_type or "")


async def article_page(
    conn: AsyncConnection, ticket_id: int, *, after: int | None, limit: int
) -> tuple[list[ArticleText], bool]:
    """Up to `limit` articles of ticket `ticket_id` with ids above `after`, oldest first, and
    whether more follow."""
    conditions = [article.c.ticket_id == ticket_id]
    if after is not None:
        conditions.append(article.c.id > after)
    query = article_select().where(and_(*conditions)).order_by(article.c.id).limit(limit + 1)
    rows = [_article(r) for r in await conn.execute(query)]
    return rows[:limit], len(rows) > limit


async def one_article(conn: AsyncConnection, ticket_id: int, article_id: int) -> ArticleText | None:
    """Article `article_id` if it belongs to ticket `ticket_id`, else None."""
    query = article_select().where(article.c.id == article_id, article.c.ticket_id == ticket_id)
    row = (await conn.execute(query)).first()
    return _article(row) if row is not None else None


# --- history ---

HIDDEN = "(hidden)"
_NUMBER = re.compile(r"\d+")


async def hidden_numbers(
    conn: AsyncConnection, candidates: Collection[str], readable: Collection[int]
) -> set[str]:
    """The ticket numbers in the texts `candidates` that belong to tickets outside the
    `readable` queues (a history entry names the tickets it was merged or linked with)."""
    wanted = sorted({n for c in candidates for n in _NUMBER.findall(c) if len(n) <= 50})
    if not wanted:
        return set()
    rows = await conn.execute(
        select(ticket.c.tn).where(ticket.c.tn.in_(wanted), ticket.c.queue_id.not_in(list(readable)))
    )
    return set(rows.scalars())


def redacted(name: str, hidden: Collection[str]) -> str:
    """A history entry's `%%`-separated name with each hidden ticket's number (also inside a
    text, as the merge note's "Merged Ticket … to …") and the id that follows a number
    replaced by "(hidden)"."""
    parts = name.split("%%")
    for i, part in enumerate(parts):
        if part in hidden:
            parts[i] = HIDDEN
            if i + 1 < len(parts) and parts[i + 1].isdigit():
                parts[i + 1] = HIDDEN
        else:
            parts[i] = _NUMBER.sub(lambda m: HIDDEN if m.group(0) in hidden else m.group(0), part)
    return "%%".join(parts)
