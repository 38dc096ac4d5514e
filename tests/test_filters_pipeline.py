"""Postmaster filter rules and control headers in the running pipeline: rules steer queue,
priority, state and title, X-PyTRS-Ignore keeps the mail without a ticket, and control headers
inside a mail count only from trusted sources."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.filter_rules import replace_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.vocabulary.inbox import InboxItem

from .helpers import inbox_states, make_mail, tickets


async def _worker(config: Any, db: Any) -> PostmasterWorker:
    await provision(db, config)
    addresses = AddressBook()
    await addresses.reload(db)
    return PostmasterWorker(config, db, addresses)


async def _store(db: Any, raw: bytes, *, trusted: bool = False, source: str = "smtp") -> None:
    async with db.transaction() as conn:
        await inbox_repo.store(
            conn, [InboxItem(source, raw, recipient="support@example.com", trusted=trusted)]
        )


async def test_rules_set_queue_priority_state_and_title(config: Any, db: Any) -> None:
    worker = await _worker(config, db)
    await replace_rules(db, [
        Rule("010-vip", (MatchRow("From", "EMAILADDRESS:.*@vip\\.example\\.org"),),
             (SetRow("X-OTRS-Queue", "Sales"), SetRow("X-PyTRS-Priority", "5 very high"))),
        Rule("020-order", (MatchRow("Subject", r"order (?P<n>\d+)"),),
             (SetRow("X-PyTRS-Title", "Order [**\\n**]"), SetRow("X-PyTRS-State", "open"))),
    ])  # fmt: skip
    await _store(db, make_mail(sender="boss@vip.example.org", subject="order 17 is late"))
    await worker.drain()
    [t] = await tickets(db)
    assert (t["queue"], t["ticket_priority_id"], t["state"], t["title"]) == (
        "Sales", 5, "open", "Order 17",
    )  # fmt: skip
    async with db.connect() as conn:
        trace = json.loads((await conn.execute(text("SELECT trace FROM inbox_message"))).scalar())
    assert [hit["rule"] for hit in trace["rules"]] == ["010-vip", "020-order"]


async def test_ignore_keeps_the_mail_without_a_ticket(config: Any, db: Any) -> None:
    worker = await _worker(config, db)
    await replace_rules(db, [
        Rule("001-spam", (MatchRow("Subject", "viagra"),), (SetRow("X-PyTRS-Ignore", "yes"),)),
    ])  # fmt: skip
    await _store(db, make_mail(subject="cheap VIAGRA"))
    await _store(db, make_mail(subject="a real question"))
    await worker.drain()
    assert await inbox_states(db) == {"done": 1, "ignored": 1}
    assert [t["title"] for t in await tickets(db)] == ["a real question"]
    async with db.connect() as conn:
        row = (await conn.execute(text(
            "SELECT raw, trace FROM inbox_message WHERE state = 'ignored'"
        ))).one()  # fmt: skip
    assert b"cheap VIAGRA" in row.raw  # recorded, not lost
    assert "X-PyTRS-Ignore" in json.loads(row.trace)["reasons"][0]


async def test_control_headers_in_mail_count_only_when_trusted(config: Any, db: Any) -> None:
    worker = await _worker(config, db)
    forged = {"X-OTRS-Queue": "Sales", "X-PyTRS-Priority": "5 very high"}
    await _store(db, make_mail(subject="untrusted", extra=forged))
    await _store(db, make_mail(subject="trusted", extra=forged), trusted=True, source="pipe")
    await worker.drain()
    by_title = {t["title"]: t for t in await tickets(db)}
    assert (by_title["untrusted"]["queue"], by_title["untrusted"]["ticket_priority_id"]) == (
        "Support", 3,
    )  # fmt: skip
    assert (by_title["trusted"]["queue"], by_title["trusted"]["ticket_priority_id"]) == (
        "Sales", 5,
    )  # fmt: skip


async def test_rules_match_on_what_pytrs_detected(config: Any, db: Any) -> None:
    """Like Znuny's DetectAttachment/DetectBounceEmail: rules see X-PyTRS-AttachmentExists,
    -AttachmentCount, -Loop and -Bounce, computed by pytrs and not forgeable by the mail."""
    from email.message import EmailMessage
    from email.policy import SMTP

    worker = await _worker(config, db)
    await replace_rules(db, [
        Rule("010-attachments", (MatchRow("X-OTRS-AttachmentExists", "^yes$"),),
             (SetRow("X-PyTRS-Queue", "Sales"),)),
        Rule("020-auto", (MatchRow("X-PyTRS-Loop", "yes"),), (SetRow("X-PyTRS-Queue", "Junk"),)),
    ])  # fmt: skip
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@customer.example", "support@example.com", "pdf"
    msg.set_content("see attached")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    await _store(db, msg.as_bytes(policy=SMTP))
    forged = {"X-PyTRS-AttachmentExists": "yes", "X-PyTRS-AttachmentCount": "3"}
    await _store(db, make_mail(subject="no attachment", extra=forged), trusted=True, source="pipe")
    await _store(db, make_mail(subject="away", extra={"Auto-Submitted": "auto-replied"}))
    await worker.drain()
    by_title = {t["title"]: t["queue"] for t in await tickets(db)}
    assert by_title == {"pdf": "Sales", "no attachment": "Support", "away": "Junk"}
