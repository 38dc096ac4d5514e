"""End to end through real sockets: SMTP/LMTP conversations → inbox → tickets and articles."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from typing import Any

import pytest
from sqlalchemy import text

from pytrs.routing.ticket_number import make_generator
from pytrs.schema.tables import article_data_mime_attachment, article_data_mime_plain, inbox

from .conftest import make_config, wait_until
from .helpers import (
    all_processed,
    articles,
    count,
    history,
    inbox_states,
    make_mail,
    send,
    tickets,
    unique_id,
)


async def _processed(db: Any, n_articles: int) -> None:
    async def check() -> bool:
        return await all_processed(db) and await count(db, article_data_mime_plain) >= n_articles

    await wait_until(check)


async def test_new_ticket_from_smtp(daemon: Any, db: Any) -> None:
    message_id = unique_id()
    raw = make_mail(subject="Printer on fire", message_id=message_id)
    await send(daemon.port(), raw)
    await _processed(db, 1)

    [t] = await tickets(db)
    assert t["queue"] == "Support"
    assert t["state"] == "new"
    assert t["ticket_priority_id"] == 3
    assert t["title"] == "Printer on fire"
    assert t["customer_user_id"] == "alice@customer.example"
    assert make_generator("DateChecksum").is_valid(t["tn"])
    [a] = await articles(db, t["id"])
    assert a["a_message_id"] == message_id
    assert a["a_from"] == "Alice Customer <alice@customer.example>"
    assert a["a_to"] == "support@example.com"
    assert a["a_subject"] == "Printer on fire"
    assert "printer is on fire" in a["a_body"]
    assert a["article_sender_type_id"] == 3 and a["is_visible_for_customer"] == 1
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT body FROM article_data_mime_plain"))).scalar()
    assert stored == raw  # the raw message as it arrived, byte for byte
    assert [kind for kind, _ in await history(db, t["id"])] == ["NewTicket", "EmailCustomer"]


async def test_follow_up_by_subject_number(daemon: Any, db: Any) -> None:
    await send(daemon.port(), make_mail(subject="Broken login"))
    await _processed(db, 1)
    [t] = await tickets(db)
    reply = make_mail(subject=f"Re: [Ticket#{t['tn']}] Broken login", body="Still broken.\n")
    await send(daemon.port(), reply)
    await _processed(db, 2)
    assert len(await tickets(db)) == 1
    assert len(await articles(db, t["id"])) == 2
    assert ("FollowUp", f"%%{t['tn']}") in await history(db, t["id"])


async def test_follow_up_by_references_only(daemon: Any, db: Any) -> None:
    first = unique_id()
    await send(daemon.port(), make_mail(subject="VPN down", message_id=first))
    await _processed(db, 1)
    reply = make_mail(
        subject="something unrelated", in_reply_to=first, references=f"<x@elsewhere> {first}"
    )
    await send(daemon.port(), reply)
    await _processed(db, 2)
    [t] = await tickets(db)
    assert len(await articles(db, t["id"])) == 2


async def test_follow_up_reopens_closed_ticket(daemon: Any, db: Any) -> None:
    await send(daemon.port(), make_mail(subject="Please close"))
    await _processed(db, 1)
    [t] = await tickets(db)
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE ticket SET ticket_state_id = 2 WHERE id = :id"),
                           {"id": t["id"]})  # fmt: skip
    await send(daemon.port(), make_mail(subject=f"[Ticket#{t['tn']}] one more thing"))
    await _processed(db, 2)
    [t] = await tickets(db)
    assert t["state"] == "open"
    assert ("StateUpdate", "%%closed successful%%open%%") in await history(db, t["id"])


async def test_follow_up_options_of_the_queue(daemon: Any, db: Any) -> None:
    # Sales opens a new ticket for a follow-up to a closed ticket; Billing rejects (stores
    # the mail on the closed ticket without reopening it).
    await send(
        daemon.port(), make_mail(subject="Quote", to="sales@example.com"), "sales@example.com"
    )
    await send(daemon.port(), make_mail(subject="Invoice", to="billing@example.com"),
               "billing@example.com")  # fmt: skip
    await _processed(db, 2)
    sales, billing = await tickets(db)
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE ticket SET ticket_state_id = 2"))
    await send(daemon.port(), make_mail(subject=f"Re: [Ticket#{sales['tn']}] Quote"),
               "sales@example.com")  # fmt: skip
    await send(daemon.port(), make_mail(subject=f"Re: [Ticket#{billing['tn']}] Invoice"),
               "billing@example.com")  # fmt: skip
    await _processed(db, 4)
    rows = await tickets(db)
    assert len(rows) == 3
    new = rows[2]
    assert new["queue"] == "Sales" and new["state"] == "new" and new["title"] == "Quote"
    billing_now = next(r for r in rows if r["id"] == billing["id"])
    assert billing_now["state"] == "closed successful"
    assert len(await articles(db, billing["id"])) == 2


async def test_dispatch_to_two_queues_by_to_and_cc(daemon: Any, db: Any) -> None:
    raw = make_mail(subject="Both teams", to="support@example.com", cc="sales@example.com")
    await send(daemon.port(), raw, ["support@example.com", "sales@example.com"])
    only_cc = make_mail(subject="Cc only", to="someone@customer.example", cc="Sales@Example.com")
    await send(daemon.port(), only_cc, ["sales@example.com"])
    await _processed(db, 3)
    by_title: dict[str, list[str]] = {}
    for t in await tickets(db):
        by_title.setdefault(t["title"], []).append(t["queue"])
    assert sorted(by_title["Both teams"]) == ["Sales", "Support"]
    assert by_title["Cc only"] == ["Sales"]


async def test_plus_tag_of_a_system_address_is_accepted(daemon: Any, db: Any) -> None:
    await send(
        daemon.port(), make_mail(to="support+urgent@example.com"), "support+urgent@example.com"
    )
    await _processed(db, 1)
    [t] = await tickets(db)
    assert t["queue"] == "Support"


async def test_unknown_recipient_is_refused_and_never_relayed(daemon: Any, db: Any) -> None:
    for rcpt in ("nobody@example.com", "victim@elsewhere.example", "support@example.com.evil"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            await send(daemon.port(), make_mail(to=rcpt), rcpt)
        code, reply = caught.value.recipients[rcpt]
        assert code == 550 and reply.startswith(b"5.1.1")
    assert await count(db, inbox) == 0


async def test_mixed_recipients_keep_only_the_accepted(daemon: Any, db: Any) -> None:
    refused = await send(daemon.port(), make_mail(), ["support@example.com", "x@elsewhere.example"])
    assert refused["x@elsewhere.example"][0] == 550
    await _processed(db, 1)
    assert await count(db, inbox) == 1


async def test_oversize_message_gets_552(
    database_settings: dict[str, Any], start_daemon: Any, db: Any
) -> None:
    daemon = await start_daemon(make_config(database_settings, smtp={"max_message_size": 5000}))
    big = make_mail(body="x" * 10_000)
    # ESMTP clients announce the size (MAIL FROM … SIZE=n) and are refused at once …
    with pytest.raises(smtplib.SMTPSenderRefused) as announced:
        await send(daemon.port(), big)
    assert announced.value.smtp_code == 552
    # … plain SMTP clients are refused after DATA.
    with pytest.raises(smtplib.SMTPDataError) as counted:
        await asyncio.to_thread(_send_with_helo, daemon.port(), big)
    assert counted.value.smtp_code == 552
    await send(daemon.port(), make_mail(body="small"))  # the listener still works
    await _processed(db, 1)
    assert await count(db, inbox) == 1


def _send_with_helo(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.helo("plain.example")
        client.sendmail("alice@customer.example", ["support@example.com"], raw)


async def test_identical_redelivery_makes_one_article(daemon: Any, db: Any) -> None:
    raw = make_mail(message_id=unique_id())
    await send(daemon.port(), raw)
    # An MTA re-delivering the same mail adds its own trace header in front.
    await send(daemon.port(), b"Received: from mx2.example by relay; Tue, 1 Jan 2030\r\n" + raw)
    await send(daemon.port(), raw)
    await _processed(db, 1)
    await asyncio.sleep(0.3)
    assert await count(db, inbox) == 1
    assert len(await articles(db)) == 1


async def test_same_message_to_two_recipients_is_one_row_each(daemon: Any, db: Any) -> None:
    raw = make_mail(to="support@example.com, sales@example.com")
    await send(daemon.port(), raw, ["support@example.com", "sales@example.com"])
    await send(daemon.port(), raw, ["support@example.com", "sales@example.com"])
    await _processed(db, 2)
    assert await count(db, inbox) == 2


async def test_lmtp_answers_per_recipient(daemon: Any, db: Any) -> None:
    raw = make_mail(to="support@example.com, sales@example.com")
    lines = await asyncio.to_thread(
        _lmtp_conversation, daemon.port("lmtp"),
        ["support@example.com", "nobody@example.com", "sales@example.com"], raw,
    )  # fmt: skip
    assert lines["rcpt"] == [250, 550, 250]
    assert lines["data"] == [250, 250]  # one status per accepted recipient (RFC 2033)
    await _processed(db, 2)
    assert sorted(t["queue"] for t in await tickets(db)) == ["Sales", "Support"]


def _lmtp_conversation(port: int, rcpts: list[str], raw: bytes) -> dict[str, list[int]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def reply() -> int:
            while True:
                line = reader.readline()
                if line[3:4] != b"-":
                    return int(line[:3])

        assert reply() == 220
        sock.sendall(b"LHLO test.example\r\n")
        assert reply() == 250
        sock.sendall(b"MAIL FROM:<alice@customer.example>\r\n")
        assert reply() == 250
        rcpt_codes = []
        for rcpt in rcpts:
            sock.sendall(f"RCPT TO:<{rcpt}>\r\n".encode())
            rcpt_codes.append(reply())
        sock.sendall(b"DATA\r\n")
        assert reply() == 354
        sock.sendall(raw + b"\r\n.\r\n")
        data_codes = [reply() for _ in range(rcpt_codes.count(250))]
        sock.sendall(b"QUIT\r\n")
        return {"rcpt": rcpt_codes, "data": data_codes}


async def test_attachments_and_html_are_stored(daemon: Any, db: Any) -> None:
    from email import policy
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "bob@customer.example"
    msg["To"] = "support@example.com"
    msg["Subject"] = "Logs attached"
    msg["Message-ID"] = unique_id()
    msg.set_content("See the log.\n")
    msg.add_alternative(
        '<p onclick="steal()">See the <b>log</b>.<script>alert(1)</script>'
        '<a href="javascript:alert(2)">x</a><img src="https://tracker.example/p.gif"></p>',
        subtype="html",
    )
    msg.add_attachment(b"line1\nline2\n", maintype="text", subtype="plain", filename="app.log")
    msg.add_attachment(bytes(range(256)), maintype="application", subtype="octet-stream",
                       filename="dump.bin")  # fmt: skip
    await send(daemon.port(), msg.as_bytes(policy=policy.SMTP), sender="bob@customer.example")
    await _processed(db, 1)
    async with db.connect() as conn:
        rows = (await conn.execute(
            text("SELECT filename, content_type, content_size, content "
                 "FROM article_data_mime_attachment ORDER BY id")
        )).all()  # fmt: skip
    by_name = {r.filename: r for r in rows}
    assert set(by_name) == {"file-2", "app.log", "dump.bin"}
    assert by_name["dump.bin"].content == bytes(range(256))
    assert by_name["dump.bin"].content_size == "256"
    stored_html = by_name["file-2"].content
    assert b"<b>log</b>" in stored_html  # sanitised HTML is what the web view gets
    for unsafe in (b"<script", b"onclick", b"javascript:", b' src="https://tracker'):
        assert unsafe not in stored_html
    assert await count(db, article_data_mime_attachment) == 3


async def test_storage_failure_answers_451_then_recovers(daemon: Any, db: Any) -> None:
    # Take the inbox away underneath the running daemon: every commit fails.
    async with db.transaction() as conn:
        await conn.execute(text("ALTER TABLE inbox_message RENAME TO inbox_message_away"))
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await send(daemon.port(), make_mail(subject="during outage"))
    assert caught.value.smtp_code == 451
    assert caught.value.smtp_error.startswith(b"4.3.0")
    assert b"inbox_message" not in caught.value.smtp_error  # no internals echoed
    async with db.transaction() as conn:
        await conn.execute(text("ALTER TABLE inbox_message_away RENAME TO inbox_message"))
    await send(daemon.port(), make_mail(subject="during outage"))  # the MTA's retry
    await _processed(db, 1)
    [t] = await tickets(db)
    assert t["title"] == "during outage"


async def test_non_mail_data_is_refused(daemon: Any, db: Any) -> None:
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await send(daemon.port(), b"\r\n\r\n")
    assert caught.value.smtp_code == 554
    assert await inbox_states(db) == {}


async def test_overlong_lines_are_accepted_not_bounced(daemon: Any, db: Any) -> None:
    # Unwrapped base64 and long HTML lines break RFC 5321's 1,000-octet limit in real mail.
    head = make_mail(subject="long line").split(b"\r\n\r\n")[0]
    raw = head + b"\r\n\r\n" + b"x" * 20_000 + b"\r\n"
    assert max(len(line) for line in raw.split(b"\r\n")) == 20_000
    await send(daemon.port(), raw)
    await _processed(db, 1)
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT body FROM article_data_mime_plain"))).scalar()
    assert stored == raw


async def test_dot_stuffed_lines_and_long_lines_arrive_as_sent(daemon: Any, db: Any) -> None:
    # smtplib doubles a leading dot; the gateway's DATA reader must take exactly one away.
    head = make_mail().partition(b"\r\n\r\n")[0].replace(b"quoted-printable", b"8bit")
    raw = head + b"\r\n\r\n.\r\n..two dots\r\n.one dot\r\n" + b"x" * 200_000 + b"\r\nend\r\n"
    await send(daemon.port(), raw)
    await _processed(db, 1)
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT body FROM article_data_mime_plain"))).scalar()
    assert bytes(stored) == raw
