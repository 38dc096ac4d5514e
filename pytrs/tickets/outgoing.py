"""Storing mail pytrs sends about a ticket: its article (when it gets one of its own), the
outbox row and the history entry, in the caller's transaction.

Used by the service for an agent's reply and by the postmaster for what `responders.answers`
composed in a batch (auto-responses, relayed answers, agent notifications). Nothing is sent
here: the outbox row commits with the change that caused it, and the outbound sender signs
(DKIM) and delivers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.responders.message import Composed
from pytrs.schema import outbox_repo
from pytrs.schema.ticket_repo import TicketSummary
from pytrs.tickets import history, rows
from pytrs.tickets.model import ArticleAttachment, HistoryEntry
from pytrs.tickets.writes import Writes, insert_articles


@dataclass(slots=True)
class Outgoing:
    """A composed mail about a ticket and how it is recorded."""

    ticket: TicketSummary
    composed: Composed
    kind: str  # outbox kind: "answer", "auto reply", "notification" …
    history_kind: str  # SendAnswer, SendAutoReply, SendAgentNotification …
    article_id: int | None = None  # the article it belongs to, when that exists already
    article_sender: str | None = None  # "system"/"agent": stored as an article of its own
    attachments: Sequence[ArticleAttachment] = ()  # the files the mail carries, kept with it


async def store_outgoing(conn: AsyncConnection, items: list[Outgoing], writes: Writes) -> None:
    """Articles for the mail that gets one (ids set on the items), outbox rows for all, and
    their history entries (written at `writes.flush`)."""
    new = [o for o in items if o.article_sender is not None]
    contents = [
        rows.sent_input(o.composed, sender=o.article_sender or "system",
                        history_kind=o.history_kind, attachments=o.attachments)
        for o in new
    ]  # fmt: skip
    ids = await insert_articles(
        conn,
        [rows.article_row(o.ticket.id, c, "", writes.now, writes.by)
         for o, c in zip(new, contents, strict=True)],
    )  # fmt: skip
    for o, content, article_id in zip(new, contents, ids, strict=True):
        o.article_id = article_id
        writes.article(content, article_id)
    await outbox_repo.enqueue_many(
        conn,
        [outbox_repo.Queued(o.composed, o.ticket.id, o.article_id, o.kind) for o in items],
        now=writes.now,
    )
    writes.history(sent_entry(o) for o in items)


def sent_entry(o: Outgoing) -> HistoryEntry:
    t = o.ticket
    kind, name = history.sent(o.history_kind, o.composed.recipients)
    return HistoryEntry(
        kind, name, t.id, t.queue_id, t.state_id, t.owner_id, t.priority_id, t.type_id,
        o.article_id,
    )  # fmt: skip
