"""The agents' search: a ticket number, words of subjects and bodies, addresses of From/To/Cc.

Place in the flow: read-only; the web search (`/search?q=`) calls `search` with the queues the
agent may read, and every query carries that permission (``queue_id IN``), so a hit in another
queue's ticket is never even counted. The words come from the index the ticket writes keep
(`tickets/search_index.py`, `schema/fulltext.py`).

Ranking, in tiers: a ticket whose number is the query first, then tickets with every word in an
article's subject, then every word anywhere; within a tier the newest article first. Each tier
reads the index newest-first and stops after a few articles per ticket wanted, so a word in half the
database costs what a rare one does; results are grouped per ticket by its best article.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import fulltext
from pytrs.schema.fulltext import Terms
from pytrs.schema.tables import article, article_data_mime, ticket
from pytrs.tickets import search_index
from pytrs.tickets.listing import QueueRow, row_columns, to_row

# Articles read per tier, per ticket wanted: tickets have a few articles, replies repeat the
# subject, and each article read is a check of its index entry (PostgreSQL reads the newest
# first and tests each, so this bounds a common word's cost).
CANDIDATES_PER_TICKET = 3
SNIPPET_CHARS = 160
_BODY_READ = 4000  # characters of the matched article read for its snippet
_NUMBER = re.compile(r"\d{1,50}")


@dataclass(frozen=True, slots=True)
class SearchHit:
    ticket: QueueRow
    why: str  # "number" | "subject" | "text"
    article_id: int | None  # the best matching article (None for a number hit)
    subject: str
    sender: str
    snippet: str


async def search(
    conn: AsyncConnection, readable: Collection[int], query: str, limit: int = 50
) -> list[SearchHit]:
    """The readable tickets matching `query`, best first, at most `limit`."""
    queues = sorted(readable)
    terms = search_index.terms(query)
    numbers = [t for t in query.split() if _NUMBER.fullmatch(t)]
    if not queues or not (numbers or terms.words or terms.addresses):
        return []
    best: dict[int, tuple[str, int | None]] = {}
    if numbers:
        found = select(ticket.c.id).where(ticket.c.tn.in_(numbers), ticket.c.queue_id.in_(queues))
        for ticket_id in (await conn.execute(found)).scalars():
            best.setdefault(ticket_id, ("number", None))
    tiers = [("subject", True), ("text", False)] if terms.words else [("text", False)]
    wanted = limit * CANDIDATES_PER_TICKET
    for why, subject_only in tiers:
        if len(best) < limit:  # a better tier may have found enough already
            for ticket_id, article_id in await _articles(conn, queues, terms, subject_only, wanted):
                best.setdefault(ticket_id, (why, article_id))
    chosen = dict(list(best.items())[:limit])
    return await _hits(conn, chosen, terms)


async def _articles(
    conn: AsyncConnection, queues: list[int], terms: Terms, subject_only: bool, limit: int
) -> list[tuple[int, int]]:
    """(ticket id, article id) of the newest matching articles of readable tickets."""
    index, article_id = fulltext.hits(conn)
    query = (
        select(article.c.ticket_id, article.c.id)
        .select_from(index)
        .join(article, article.c.id == article_id)
        .join(ticket, ticket.c.id == article.c.ticket_id)
        .where(fulltext.matches(conn, terms, subject_only=subject_only))
        .where(ticket.c.queue_id.in_(queues))
        .order_by(article_id.desc())
        .limit(limit)
    )
    return [(t, a) for t, a in await conn.execute(query)]


async def _hits(
    conn: AsyncConnection, chosen: dict[int, tuple[str, int | None]], terms: Terms
) -> list[SearchHit]:
    if not chosen:
        return []
    tickets = {
        r.id: to_row(r)
        for r in await conn.execute(row_columns().where(ticket.c.id.in_(list(chosen))))
    }
    article_ids = [a for _why, a in chosen.values() if a is not None]
    articles: dict[int, Any] = {}
    if article_ids:
        found = select(
            article_data_mime.c.article_id, article_data_mime.c.a_subject,
            article_data_mime.c.a_from, func.substr(article_data_mime.c.a_body, 1, _BODY_READ),
        ).where(article_data_mime.c.article_id.in_(article_ids))  # fmt: skip
        articles = {r[0]: r for r in await conn.execute(found)}
    hits = []
    for ticket_id, (why, article_id) in chosen.items():
        found_article = articles.get(article_id) if article_id is not None else None
        subject, sender, body = found_article[1:] if found_article else ("", "", "")
        hits.append(SearchHit(
            tickets[ticket_id], why, article_id, subject or "", sender or "",
            snippet(body or "", terms),
        ))  # fmt: skip
    return hits


def snippet(body: str, terms: Terms) -> str:
    """A line of `body` around the first word searched for (its start when none is found)."""
    text = " ".join(body.split())
    lowered = text.lower()
    places = [p for p in (lowered.find(w) for w in terms.words) if p >= 0]
    start = max(min(places) - SNIPPET_CHARS // 3, 0) if places else 0
    cut = text[start : start + SNIPPET_CHARS]
    return ("…" if start else "") + cut + ("…" if start + SNIPPET_CHARS < len(text) else "")
