"""Znuny's PostMaster sample mails through the whole spine: inbox → worker → ticket + article.

Upstream expectations (../shared/corpus/znuny/INDEX.md) checked on what was stored: raw mail
byte for byte, attachment names and MD5s, long subjects cut to the title column.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import text

from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.vocabulary.inbox import InboxItem

from .helpers import inbox_states, tickets


async def test_znuny_postmaster_samples_become_tickets(corpus: Path, config: Any, db: Any) -> None:
    files = sorted(p for p in (corpus / "PostMaster").iterdir() if p.suffix in (".box", ".eml"))
    assert len(files) >= 20
    await provision(db, config)
    # Several samples differ from each other only in headers (same Message-ID and body), which
    # the inbox treats as one message re-delivered; distinct recipients keep them apart here.
    items = [
        InboxItem("pipe", p.read_bytes(), recipient=f"sample-{n}@corpus.example")
        for n, p in enumerate(files)
    ]
    async with db.transaction() as conn:
        await inbox_repo.store(conn, items)
    addresses = AddressBook()
    await addresses.reload(db)
    await PostmasterWorker(config, db, addresses).drain()
    assert await inbox_states(db) == {"done": len(files)}

    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT i.id, p.body, m.a_subject, t.title FROM inbox_message i "
                    "JOIN article_data_mime_plain p ON p.article_id = i.article_id "
                    "JOIN article_data_mime m ON m.article_id = i.article_id "
                    "JOIN ticket t ON t.id = i.ticket_id ORDER BY i.id"
                )
            )
        ).all()
        attachments = (
            await conn.execute(
                text(
                    "SELECT i.id, a.filename, a.content FROM article_data_mime_attachment a "
                    "JOIN inbox_message i ON i.article_id = a.article_id"
                )
            )
        ).all()
    by_file = {files[n].name: row for n, row in enumerate(rows)}
    for n, path in enumerate(files):
        assert rows[n].body == path.read_bytes(), f"{path.name}: raw mail not kept byte for byte"
    assert all(len(r.title) <= 255 for r in rows)
    assert len(by_file["PostMaster-Test21.box"].a_subject) > 255  # full subject on the article
    assert by_file["PostMaster-Test21.box"].title  # … and a cut one as the title

    names = {(r.id, r.filename): hashlib.md5(r.content).hexdigest() for r in attachments}
    test3 = by_file["PostMaster-Test3.box"].id
    assert names[(test3, "utf-8-file-äöüß-カスタマ.txt")] == "4e78ae6bffb120669f50bca56965f552"
    test26 = by_file["PostMaster-Test26.box"].id
    assert (test26, "StdAttachment-Test1.pdf") in names
    assert names[(test26, "StdAttachment-Test1.pdf")] == "5ee767f3b68f24a9213e0bef82dc53e5"
    assert {t["queue"] for t in await tickets(db)} == {"Raw"}  # no system address → default
