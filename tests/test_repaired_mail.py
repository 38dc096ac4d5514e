"""Through the daemon: mail the parser had to repair still becomes an article, and the repairs
are recorded in the routing trace (`pytrs inbox show`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from .conftest import wait_until
from .helpers import all_processed, send

BROKEN = (
    b"From: =?utf-8?B?Wm/DqyBNw7xsbGVy?= <zoe@customer.example>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: =?x-unknown?Q?caf=E9_cr=E8me?= broken\r\n"
    b"Date: yesterday-ish, around noon\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Caf\xe9 cr\xe8me with 8-bit bytes in a us-ascii body,\r\n"
    b"and a NUL here: \x00 end.\r\n"
)


async def test_repaired_mail_becomes_an_article_with_its_warnings(daemon: Any, db: Any) -> None:
    await send(daemon.port(), BROKEN, sender="zoe@customer.example")

    async def processed() -> bool:
        return await all_processed(db)

    await wait_until(processed)
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT i.state, i.trace, m.a_subject, m.a_body, m.a_from, m.a_message_id "
                    "FROM inbox_message i JOIN article_data_mime m ON m.article_id = i.article_id"
                )
            )
        ).one()
    assert row.state == "done"
    assert row.a_from.startswith("Zoë Müller")
    assert "broken" in row.a_subject
    assert "Café crème" in row.a_body and "\x00" not in row.a_body
    assert row.a_message_id.startswith("<") and row.a_message_id.endswith(">")  # derived
    warnings = json.loads(row.trace)["warnings"]
    assert warnings, "the repairs must be recorded"
    joined = " ".join(warnings).lower()
    assert "message-id" in joined and "date" in joined


async def test_classification_is_recorded_in_the_trace(daemon: Any, db: Any, corpus: Any) -> None:
    bounce = (corpus / "PostMaster" / "PostMaster-Test10.box").read_bytes()
    await send(daemon.port(), bounce, sender="")
    await wait_until(lambda: all_processed(db))
    async with db.connect() as conn:
        trace = json.loads(
            (await conn.execute(text("SELECT trace FROM inbox_message"))).scalar_one()
        )
    found = trace["classification"]
    assert found["loop"] is True
    assert found["bounce"]["permanent"] is True
    assert found["bounce"]["original_message_id"].startswith("<1183717051.")
