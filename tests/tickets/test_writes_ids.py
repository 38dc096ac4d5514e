"""`insert_tickets` / `insert_articles` return the new ids in the order of their rows, whether
the rows are told apart by their key column (one multi-row insert) or not (the ordered insert,
one row per statement on SQLite)."""

from __future__ import annotations

from sqlalchemy import select

from pytrs.schema.database import utcnow
from pytrs.schema.tables import article, ticket
from pytrs.tickets import ArticleInput, rows
from pytrs.tickets.writes import insert_articles, insert_tickets

from .conftest import Desk


def _ticket(tn: str, title: str) -> dict[str, object]:
    values = {
        "tn": tn, "title": title, "queue_id": 1, "ticket_lock_id": 1, "user_id": 1,
        "responsible_user_id": 1, "ticket_priority_id": 3, "ticket_state_id": 1,
    }  # fmt: skip
    return rows.ticket_row(values, utcnow(), 1)


async def test_ticket_ids_follow_the_rows(desk: Desk) -> None:
    # Numbers out of their sort order: the ids must follow the rows, not the numbers.
    tns = ["2026120710000093", "2026120710000011", "2026120710000057", "2026120710000024"]
    async with desk.db.transaction() as conn:
        ids = await insert_tickets(conn, [_ticket(tn, f"title {tn}") for tn in tns])
        found = {r.id: r.tn for r in await conn.execute(select(ticket.c.id, ticket.c.tn))}
    assert len(set(ids)) == len(tns)
    assert [found[i] for i in ids] == tns


async def test_article_ids_follow_the_rows_with_and_without_fingerprints(desk: Desk) -> None:
    ticket_id, _tn = await desk.ticket()
    now = utcnow()
    content = ArticleInput(sender="customer", subject="s", body="b")

    def row(fingerprint: str, visible: bool) -> dict[str, object]:
        one = rows.article_row(ticket_id, content, fingerprint, now, 1)
        return {**one, "is_visible_for_customer": int(visible)}

    keyed = [row(f"inbox-{n}", n % 2 == 0) for n in (7, 3, 9, 4, 1)]
    # Repeated and missing fingerprints cannot tell rows apart: the ordered insert is used.
    unkeyed = [row("same", False), row("same", True), row("", True), row("", False)]
    async with desk.db.transaction() as conn:
        for batch in (keyed, unkeyed):
            ids = await insert_articles(conn, batch)
            query = select(article.c.id, article.c.insert_fingerprint,
                           article.c.is_visible_for_customer)  # fmt: skip
            stored = {r.id: (r.insert_fingerprint, r.is_visible_for_customer)
                      for r in await conn.execute(query)}  # fmt: skip
            assert len(set(ids)) == len(batch)
            assert [stored[i] for i in ids] == [
                (r["insert_fingerprint"], r["is_visible_for_customer"]) for r in batch
            ]
