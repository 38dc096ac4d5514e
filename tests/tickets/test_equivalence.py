"""The same change made by mail and by the ticket service leaves the same rows.

A customer's follow-up whose filter rules set X-PyTRS-FollowUp-* headers (state, priority,
queue, title, owner, responsible, lock) goes through the postmaster worker to one ticket; the
same change is made by the service on a twin ticket (update, then the customer's article).
History rows (types, names, queue/state/owner/priority ids), article rows (MIME fields, raw
mail, attachments) and the tickets' columns must be identical, ids and timestamps aside.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from pytrs.parsers import parse_mail
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.schema.filter_repo import replace_rules
from pytrs.schema.tables import (
    article,
    article_data_mime,
    article_data_mime_attachment,
    article_data_mime_plain,
    ticket,
    ticket_history,
)
from pytrs.tickets import Actor, TicketUpdate
from pytrs.tickets.rows import article_input

from ..helpers import make_mail, tickets, unique_id
from .conftest import CUSTOMER, Desk

_VOLATILE = {
    "id", "ticket_id", "article_id", "create_time", "change_time", "insert_fingerprint",
    "incoming_time", "content_path", "tn",
}  # fmt: skip


async def _history(desk: Desk, ticket_id: int, tn: str) -> list[tuple[Any, ...]]:
    async with desk.db.connect() as conn:
        rows = await conn.execute(
            select(ticket_history).where(ticket_history.c.ticket_id == ticket_id)
            .order_by(ticket_history.c.id)
        )  # fmt: skip
        return [
            (r.history_type_id, r.name.replace(tn, "<tn>"), r.queue_id, r.state_id, r.owner_id,
             r.priority_id, r.type_id, r.article_id is not None, r.create_by)
            for r in rows
        ]  # fmt: skip


async def _articles(desk: Desk, ticket_id: int) -> list[dict[str, Any]]:
    found = []
    async with desk.db.connect() as conn:
        rows = await conn.execute(
            select(article, article_data_mime, article_data_mime_plain.c.body.label("raw"))
            .join(article_data_mime, article_data_mime.c.article_id == article.c.id)
            .join(article_data_mime_plain, article_data_mime_plain.c.article_id == article.c.id)
            .where(article.c.ticket_id == ticket_id)
            .order_by(article.c.id)
        )  # fmt: skip
        for r in rows:
            # Columns of the joined tables come back as "id_1", "create_time_1" …
            row = {k: v for k, v in r._asdict().items() if re.sub(r"_\d+$", "", k) not in _VOLATILE}
            files = await conn.execute(
                select(article_data_mime_attachment)
                .where(article_data_mime_attachment.c.article_id == r.id)
                .order_by(article_data_mime_attachment.c.id)
            )
            row["files"] = [
                {k: v for k, v in f._asdict().items() if k not in _VOLATILE} for f in files
            ]
            found.append(row)
    return found


async def _ticket(desk: Desk, ticket_id: int) -> dict[str, Any]:
    async with desk.db.connect() as conn:
        row = (await conn.execute(select(ticket).where(ticket.c.id == ticket_id))).one()
    return {k: v for k, v in row._asdict().items() if k not in _VOLATILE}


async def test_follow_up_by_mail_and_by_service_write_the_same_rows(desk: Desk) -> None:
    first = unique_id()
    await desk.deliver(make_mail(sender=CUSTOMER, subject="Printer on fire", message_id=first))
    await desk.deliver(make_mail(sender=CUSTOMER, subject="Printer on fire"))
    by_mail, twin = await tickets(desk.db)
    await replace_rules(desk.db, [
        Rule("010-escalate", (MatchRow("Body", "urgent"),),
             (SetRow("X-PyTRS-FollowUp-State", "open"),
              SetRow("X-PyTRS-FollowUp-Priority", "4 high"),
              SetRow("X-PyTRS-FollowUp-Queue", "Sales"),
              SetRow("X-PyTRS-FollowUp-Title", "Escalated"),
              SetRow("X-PyTRS-FollowUp-Owner", "jdoe"),
              SetRow("X-PyTRS-FollowUp-Responsible", "asmith"),
              SetRow("X-PyTRS-FollowUp-Lock", "lock"))),
    ])  # fmt: skip
    # Threaded by References (not the subject), so that both tickets can take the same bytes.
    raw = make_mail(sender=CUSTOMER, subject="Re: Printer on fire", in_reply_to=first,
                    references=first, body="urgent: it spreads!\n")  # fmt: skip
    await desk.deliver(raw)
    mail = parse_mail(raw)
    async with desk.db.transaction() as conn:
        changes = await desk.service.update(
            conn, twin["id"],
            TicketUpdate(state="open", priority="4 high", queue="Sales", title="Escalated",
                         owner="jdoe", responsible="asmith", lock="lock"),
            actor=Actor.SYSTEM,
        )  # fmt: skip
        await desk.service.add_article(
            conn,
            twin["id"],
            article_input(mail, raw, sender="customer", visible=True),
            actor=Actor.SYSTEM,
        )
    assert len(changes.fields) == 7
    mail_history = await _history(desk, by_mail["id"], by_mail["tn"])
    service_history = await _history(desk, twin["id"], twin["tn"])
    assert len(mail_history) == 2 + 8  # NewTicket, EmailCustomer; 7 changes and FollowUp
    # Both tickets were opened by mail; what follows is the change under test.
    assert [h[0] for h in mail_history[:2]] == [h[0] for h in service_history[:2]]
    assert mail_history[2:] == service_history[2:]
    mail_articles = await _articles(desk, by_mail["id"])
    assert len(mail_articles) == 2 and mail_articles[1]["raw"] == raw
    twin_articles = await _articles(desk, twin["id"])
    assert not _diff(mail_articles[1], twin_articles[1])
    assert mail_articles[1:] == twin_articles[1:]
    assert await _ticket(desk, by_mail["id"]) == await _ticket(desk, twin["id"])


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
