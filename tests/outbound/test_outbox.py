"""The outbox and its sender against a real SMTP conversation with a recording relay."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import json
from collections import deque
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy import select

from pytrs.config import Config, DkimKeyConfig
from pytrs.outbound.dkim import DkimSigner
from pytrs.outbound.sender import OutboxSender
from pytrs.responders.message import Composer
from pytrs.schema import outbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import address_suppression, article_data_mime_send_error, ticket_history
from pytrs.vocabulary import znuny

from ..servers.relay import RecordingRelay, self_signed
from .conftest import draft, enqueue, make_ticket, outbound_config, rows, states


async def send_all(sender: OutboxSender, rounds: int = 20) -> None:
    """Run batches until nothing is due (waiting out short retry delays)."""
    for _ in range(rounds):
        await sender.run_once()
        due = await outbox_repo.next_due(sender.db)
        if due is None:
            return
        wait = (due - utcnow()).total_seconds()
        await asyncio.sleep(max(wait, 0) + 0.01)
    raise AssertionError("the outbox did not settle")


@pytest.fixture
async def sender(sender_config: Config, db: Database) -> Any:
    outbox_sender = OutboxSender(sender_config, db)
    yield outbox_sender
    await outbox_sender.close()


async def test_a_rolled_back_enqueue_sends_nothing(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    class Abort(Exception):
        pass

    mail = Composer.from_config(sender_config).compose(draft())
    with pytest.raises(Abort):
        async with db.transaction() as conn:
            await outbox_repo.enqueue(conn, mail)
            raise Abort
    assert await sender.run_once() == 0
    assert relay.received == [] and await rows(db) == []


async def test_delivered_bytes_and_headers(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    ticket_ids = await make_ticket(db)
    [outbox_id] = await enqueue(db, sender_config, ticket_ids=ticket_ids)
    [queued] = await rows(db)
    assert await sender.run_once() == 1
    [got] = relay.received
    assert got.data == queued.raw  # exactly the bytes queued (no DKIM key configured)
    assert got.mail_from == "support@example.com"
    assert got.rcpt_tos == ("alice@customer.example",)
    msg = email.message_from_bytes(got.data, policy=policy.default)
    assert msg["Message-ID"] == queued.message_id
    assert msg["In-Reply-To"] == "<first@customer.example>"
    assert msg["References"] == "<root@customer.example> <first@customer.example>"
    assert msg["Subject"] == "Re: [Ticket#2026112510000017] Printer on fire"
    assert msg["Auto-Submitted"] == "auto-replied" and msg["Precedence"] == "bulk"
    assert msg["X-Auto-Response-Suppress"] == "All" and msg["X-PyTRS-Loop"]
    [row] = await rows(db)
    assert (row.id, row.state, row.attempts, row.raw) == (outbox_id, "sent", 1, None)
    assert row.sent_at is not None and row.claim_token is None and row.last_error is None
    assert json.loads(row.results) == {
        "alice@customer.example": {"status": "sent", "reply": "250 2.0.0 queued"}
    }
    async with db.connect() as conn:
        found = await outbox_repo.find_by_message_ids(conn, [queued.message_id])
    assert found == {queued.message_id: ticket_ids}


async def test_451_then_250_delivers_exactly_once(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    relay.data_faults.append("451 4.3.0 try again later")
    await enqueue(db, sender_config)
    await sender.run_once()
    [row] = await rows(db)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error == "alice@customer.example: 451 4.3.0 try again later"
    assert row.next_attempt_at > utcnow() - timedelta(seconds=1)
    await send_all(sender)
    assert len(relay.received) == 1
    [row] = await rows(db)
    assert (row.state, row.attempts) == ("sent", 2)


async def test_550_fails_for_good_with_send_error_and_history(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    relay.data_faults.append("550 5.7.1 message content rejected")
    ticket_id, article_id = await make_ticket(db)
    await enqueue(db, sender_config, ticket_ids=(ticket_id, article_id))
    await send_all(sender)
    [row] = await rows(db)
    assert (row.state, row.attempts) == ("failed", 1) and relay.received == []
    assert row.raw is not None  # kept for an operator's retry
    async with db.connect() as conn:
        errors = (await conn.execute(select(article_data_mime_send_error))).all()
        history = (
            await conn.execute(
                select(ticket_history).where(ticket_history.c.ticket_id == ticket_id)
            )
        ).all()
        blocked = (await conn.execute(select(address_suppression))).all()
    assert [(e.article_id, e.message_id) for e in errors] == [(article_id, row.message_id)]
    assert errors[0].log_message == "alice@customer.example: 550 5.7.1 message content rejected"
    assert [(h.history_type_id, h.article_id) for h in history] == [
        (znuny.history_type_id("Misc"), article_id)
    ]
    assert history[0].name.startswith("Mail not delivered to alice@customer.example: 550 5.7.1")
    assert blocked == []  # a content refusal says nothing about the address


async def test_a_disconnect_before_the_reply_to_data_is_retried(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    relay.data_faults.append("disconnect")
    await enqueue(db, sender_config, 2)
    await sender.run_once()
    first, second = await rows(db)
    assert first.state == "pending" and "no reply to DATA" in first.last_error
    # One lost transaction is not a dead relay: the next mail goes out on a new connection.
    assert second.state == "sent" and relay.connections == 2
    await send_all(sender)
    assert sorted(relay.message_ids()) == sorted(r.message_id for r in await rows(db))
    assert await states(db) == {"sent": 2}


async def test_connection_is_reused_across_mails(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    await enqueue(db, sender_config, 5)
    await sender.run_once()
    assert len(relay.received) == 5 and relay.connections == 1


async def test_some_recipients_refused_for_good(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    relay.rcpt_replies["gone@customer.example"] = "550 5.1.1 no such user"
    ticket_ids = await make_ticket(db)
    await enqueue(db, sender_config, ticket_ids=ticket_ids, cc=["Gone <gone@customer.example>"])
    await send_all(sender)
    [got] = relay.received
    assert got.rcpt_tos == ("alice@customer.example",)
    [row] = await rows(db)
    assert row.state == "sent"
    assert json.loads(row.results)["gone@customer.example"] == {
        "status": "failed",
        "reply": "550 5.1.1 no such user",
    }
    async with db.connect() as conn:
        errors = (await conn.execute(select(article_data_mime_send_error))).all()
        blocked = await outbox_repo.suppressed(conn, ["GONE@customer.example"])
    assert errors[0].log_message == "gone@customer.example: 550 5.1.1 no such user"
    assert blocked["gone@customer.example"].reason == "550 5.1.1 no such user"
    # The next mail to that address is not sent to it: it bounced hard.
    relay.rcpt_replies.clear()
    await enqueue(db, sender_config, cc=["gone@customer.example"])
    await send_all(sender)
    assert relay.received[1].rcpt_tos == ("alice@customer.example",)
    latest = (await rows(db))[-1]
    assert "suppressed until" in json.loads(latest.results)["gone@customer.example"]["reply"]


async def test_a_temporary_refusal_is_retried_for_that_recipient_only(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    relay.rcpt_replies["bob@customer.example"] = deque(["452 4.2.2 mailbox full"])
    await enqueue(db, sender_config, cc=["bob@customer.example"])
    await sender.run_once()
    [row] = await rows(db)
    assert row.state == "pending"
    await send_all(sender)
    assert [r.rcpt_tos for r in relay.received] == [
        ("alice@customer.example",),
        ("bob@customer.example",),
    ]
    assert await states(db) == {"sent": 1}


async def test_retries_end_at_the_horizon(
    db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    config = outbound_config(database_settings, relay, max_retry_hours=0.0)
    relay.data_faults.append("451 4.3.0 later")
    ticket_ids = await make_ticket(db)
    await enqueue(db, config, ticket_ids=ticket_ids)
    sender = OutboxSender(config, db)
    await sender.run_once()
    await sender.close()
    [row] = await rows(db)
    assert row.state == "failed"
    assert json.loads(row.results)["alice@customer.example"]["reply"] == (
        "gave up after 0 h; last: 451 4.3.0 later"
    )


async def test_an_unreachable_relay_defers_the_batch(
    db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    port = relay.port
    await relay.stop()
    config = outbound_config(database_settings, relay, timeout_seconds=1.0)
    await enqueue(db, config, 3)
    sender = OutboxSender(config, db)
    await sender.run_once()
    found = await rows(db)
    assert {r.state for r in found} == {"pending"} and {r.attempts for r in found} == {1}
    assert all("relay unreachable" in r.last_error for r in found)
    # The relay comes back on the same port: everything goes out, once.
    back = await RecordingRelay().start(port=port)
    try:
        await send_all(sender)
    finally:
        await sender.close()
        await back.stop()
    assert len(back.received) == 3 and await states(db) == {"sent": 3}


async def test_dkim_signed_on_the_wire(
    db: Database,
    database_settings: dict[str, Any],
    relay: RecordingRelay,
    dkim_keys: dict[str, Path],
) -> None:
    config = dataclasses.replace(
        outbound_config(database_settings, relay),
        dkim_keys=(DkimKeyConfig("example.com", "s1", str(dkim_keys["rsa"])),),
    )
    signer = DkimSigner.from_config(config.dkim_keys)
    await enqueue(db, config)
    [queued] = await rows(db)
    sender = OutboxSender(config, db, signer)
    await sender.run_once()
    await sender.close()
    [got] = relay.received
    assert got.data.startswith(b"DKIM-Signature: ") and got.data.endswith(queued.raw)
    key = signer.keys["example.com"]
    assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: key.dns_record().encode())


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_tls_and_auth(
    db: Database, database_settings: dict[str, Any], tmp_path: Path, mode: str
) -> None:
    context, cert = self_signed(tmp_path)
    relay = await RecordingRelay().start(
        starttls=context if mode == "starttls" else None,
        implicit_tls=context if mode == "tls" else None,
        auth=("pytrs", "s3cret") if mode == "starttls" else None,
    )
    password = tmp_path / "relay.pw"
    password.write_text("s3cret\n")
    auth = {"username": "pytrs", "password_file": str(password)} if mode == "starttls" else {}
    config = outbound_config(database_settings, relay, tls=mode, ca_file=str(cert), **auth)
    await enqueue(db, config)
    sender = OutboxSender(config, db)
    try:
        await sender.run_once()
    finally:
        await sender.close()
        await relay.stop()
    assert len(relay.received) == 1 and await states(db) == {"sent": 1}


async def test_a_wrong_password_defers_instead_of_failing_the_mail(
    db: Database, database_settings: dict[str, Any], tmp_path: Path
) -> None:
    context, cert = self_signed(tmp_path)
    relay = await RecordingRelay().start(starttls=context, auth=("pytrs", "s3cret"))
    config = outbound_config(
        database_settings, relay, tls="starttls", ca_file=str(cert), username="pytrs",
        password="wrong",
    )  # fmt: skip
    await enqueue(db, config)
    sender = OutboxSender(config, db)
    try:
        await sender.run_once()
    finally:
        await sender.close()
        await relay.stop()
    [row] = await rows(db)
    assert row.state == "pending" and "535" in row.last_error


async def test_a_refusal_text_the_database_would_refuse_is_stored(
    db: Database, sender_config: Config, sender: OutboxSender, relay: RecordingRelay
) -> None:
    # The relay's reply text ends up in the send-error row and the ticket history: a NUL in it
    # (PostgreSQL refuses one in text) used to fail the outcome's commit again and again.
    relay.data_faults.append("550 5.7.1 rejected\x00 by " + "policy " * 60)
    ticket_id, article_id = await make_ticket(db)
    await enqueue(db, sender_config, ticket_ids=(ticket_id, article_id))
    await send_all(sender)
    [row] = await rows(db)
    assert row.state == "failed"
    async with db.connect() as conn:
        [error] = (await conn.execute(select(article_data_mime_send_error))).all()
        [entry] = (
            await conn.execute(
                select(ticket_history).where(ticket_history.c.ticket_id == ticket_id)
            )
        ).all()
    assert error.log_message.startswith("alice@customer.example: 550 5.7.1 rejected by policy")
    assert entry.name.startswith("Mail not delivered to alice@customer.example: 550 5.7.1")
    assert "\x00" not in entry.name and len(entry.name) <= 200
