"""An agent's answer with files and the queue's signature (the web view's reply form)."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from pytrs.schema.tables import article_data_mime_attachment, outbox
from pytrs.tickets import ArticleAttachment

from ..helpers import articles
from .conftest import open_desk


async def test_reply_carries_attachments_and_signature(database_settings: dict[str, Any]) -> None:
    desk = await open_desk(
        database_settings,
        queues=[
            {"name": "Support", "signature": "Example Support\nhttps://support.example"},
            {"name": "Sales"},
            {"name": "Billing"},
        ],
    )
    try:
        ticket_id, _tn = await desk.ticket()
        jdoe = await desk.agent()
        async with desk.db.transaction() as conn:
            reply = await desk.service.reply(
                conn, ticket_id, actor=jdoe, body="> Hello\n\nSee the manual.", quote=False,
                attachments=[ArticleAttachment("manual.pdf", "application/pdf", b"%PDF-1.4")],
            )  # fmt: skip
            raw = (await conn.execute(select(outbox.c.raw))).scalar_one()
            files = (await conn.execute(
                select(article_data_mime_attachment.c.filename)
                .where(article_data_mime_attachment.c.article_id == reply.article_id)
            )).scalars().all()  # fmt: skip
        msg = email.message_from_bytes(bytes(raw), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        body = msg.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        # The agent's text (its own quote kept, no second one), then the signature.
        assert text == (
            "> Hello\n\nSee the manual.\n\n-- \nExample Support\nhttps://support.example\n"
        )
        [part] = list(msg.iter_attachments())
        assert (part.get_filename(), part.get_content_type()) == ("manual.pdf", "application/pdf")
        assert part.get_content() == b"%PDF-1.4"
        assert list(files) == ["manual.pdf"]
        stored = await articles(desk.db, ticket_id)
        assert stored[-1]["a_body"].endswith("https://support.example\n")
    finally:
        await desk.db.close()


async def test_reply_without_signature_quotes_the_customer(
    database_settings: dict[str, Any],
) -> None:
    desk = await open_desk(database_settings)
    try:
        ticket_id, _tn = await desk.ticket()
        jdoe = await desk.agent()
        async with desk.db.transaction() as conn:
            await desk.service.reply(conn, ticket_id, actor=jdoe, body="On it.")
            raw = (await conn.execute(select(outbox.c.raw))).scalar_one()
        msg = email.message_from_bytes(bytes(raw), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        text = msg.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]
        assert text == "On it.\n\n> Hello, the printer is on fire.\n"
    finally:
        await desk.db.close()
