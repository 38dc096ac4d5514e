"""`pytrs outbox list|show|retry|flush|suppressed|unsuppress`: the real command against the test
database, on rows made by the outbox's own enqueue, claim and settle; `flush` sends through the
recording relay, beside a running sender."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from pytrs.config import OutboundConfig
from pytrs.outbound.delivery import Reply, RetryPolicy, settle
from pytrs.outbound.sender import OutboxSender
from pytrs.schema import outbox_repo
from pytrs.schema.database import Database, utcnow
from pytrs.schema.outbox_repo import OutboxMail
from pytrs.schema.tables import address_suppression, outbox

from .helpers import count, make_mail, unique_id
from .outbound.conftest import make_ticket, outbound_config
from .servers.relay import RecordingRelay
from .test_cli import pytrs, write_config

LEASE = timedelta(seconds=60)
POLICY = RetryPolicy.from_config(OutboundConfig())
REFUSED = Reply(550, "5.7.1 relaying denied")


async def make_row(
    db: Database, *recipients: str, outcome: Reply | None = None, ticket_id: int | None = None
) -> int:
    """Queue a mail to `recipients`; with `outcome`, claim it and settle every recipient so."""
    raw = make_mail(sender="support@example.com", to=", ".join(recipients), subject="Re: printer")
    mail = OutboxMail(raw, "support@example.com", recipients, unique_id("example.com"))
    async with db.transaction() as conn:
        row_id = await outbox_repo.enqueue(conn, mail, ticket_id=ticket_id, kind="auto-reply")
    if outcome is not None:
        [claimed] = await outbox_repo.claim(db, 1, LEASE)
        assert claimed.id == row_id, "settle rows before queueing pending ones"
        replies = dict.fromkeys(claimed.pending, outcome)
        assert await outbox_repo.settle(db, [settle(claimed, replies, POLICY, utcnow())]) == []
    return row_id


async def row(db: Database, row_id: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(outbox).where(outbox.c.id == row_id))).one()


@pytest.fixture
def cli(tmp_path: Path, database_settings: dict[str, Any]) -> Path:
    return write_config(tmp_path / "pytrs.toml", database_settings)


async def test_list_and_show(cli: Path, db: Database) -> None:
    ticket_id, _ = await make_ticket(db)
    failed = await make_row(db, "a@customer.example", "b@customer.example", outcome=REFUSED,
                            ticket_id=ticket_id)  # fmt: skip
    sent = await make_row(db, "c@customer.example", outcome=Reply(250, "2.0.0 queued"))
    pending = await make_row(db, "d@customer.example")

    listing = pytrs(cli, "outbox", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    lines = pytrs(cli, "outbox", "list", "--jsonl").stdout.splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert [(r["id"], r["state"]) for r in rows] == [
        (pending, "pending"), (sent, "sent"), (failed, "failed")
    ]  # fmt: skip
    assert rows[2]["recipients"] == ["a@customer.example", "b@customer.example"]
    assert rows[2]["ticket_id"] == ticket_id and rows[2]["attempts"] == 1
    assert rows[2]["kind"] == "auto-reply" and "5.7.1 relaying denied" in rows[2]["last_error"]

    table = pytrs(cli, "outbox", "list", "--state", "failed").stdout.decode()
    [header, line, error] = table.splitlines()
    assert "NEXT ATTEMPT" in header and "RECIPIENTS" in header
    assert line.split()[:5] == [str(failed), "failed", "auto-reply", str(ticket_id), "1"]
    assert line.endswith("a@customer.example, b@customer.example")
    assert error.strip().startswith("error: a@customer.example: 550 5.7.1 relaying denied")

    shown = pytrs(cli, "outbox", "show", str(failed))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert "state: failed" in text and f"ticket_id: {ticket_id}" in text
    assert "raw: kept (" in text and "claim_token" not in text
    assert "  b@customer.example: failed  550 5.7.1 relaying denied" in text
    raw = pytrs(cli, "outbox", "show", str(failed), "--raw")
    assert raw.stdout == (await row(db, failed)).raw

    gone = pytrs(cli, "outbox", "show", str(sent), "--raw")
    assert gone.returncode == 1 and b"not kept once sent" in gone.stderr
    delivered = pytrs(cli, "outbox", "show", str(sent)).stdout
    assert b"c@customer.example: sent  250 2.0.0 queued" in delivered
    missing = pytrs(cli, "outbox", "show", "999999")
    assert missing.returncode == 1 and b"outbox 999999: no such row" in missing.stderr


async def test_retry_requeues_failed_rows_and_names_the_others(cli: Path, db: Database) -> None:
    failed = await make_row(db, "a@customer.example", "b@customer.example", outcome=REFUSED)
    sent = await make_row(db, "c@customer.example", outcome=Reply(250, "2.0.0 queued"))
    stripped = await make_row(db, "e@customer.example", outcome=REFUSED)
    pending = await make_row(db, "d@customer.example")
    async with db.transaction() as conn:
        await conn.execute(update(outbox).where(outbox.c.id == stripped).values(raw=None))

    result = pytrs(cli, "outbox", "retry", str(failed), str(sent), str(stripped), str(pending),
                   "999999")  # fmt: skip
    assert result.returncode == 1
    assert (
        f"outbox {failed}: queued again for a@customer.example, b@customer.example".encode()
        in result.stdout
    )
    assert b"1 message(s) re-queued" in result.stdout
    errors = result.stderr.decode()
    assert f"outbox {sent}: was sent" in errors
    assert f"outbox {stripped}: failed, but its message bytes are gone" in errors
    assert f"outbox {pending}: is pending, not failed" in errors
    assert "outbox 999999: no such row" in errors

    again = await row(db, failed)
    assert again.state == "pending" and again.next_attempt_at <= utcnow()
    assert again.attempts == 1 and again.raw is not None
    assert json.loads(again.results) == {
        address: {"status": "retry", "reply": "550 5.7.1 relaying denied"}
        for address in ("a@customer.example", "b@customer.example")
    }
    assert (await row(db, stripped)).state == "failed" and (await row(db, sent)).state == "sent"
    assert pytrs(cli, "outbox", "retry").returncode == 2


async def test_retry_all_failed_and_the_suppression_warning(cli: Path, db: Database) -> None:
    first = await make_row(db, "gone@customer.example", outcome=Reply(550, "5.1.1 no such user"))
    second = await make_row(db, "f@customer.example", outcome=REFUSED)
    assert await count(db, address_suppression) == 1  # the 5.1.1 suppressed its address

    result = pytrs(cli, "outbox", "retry", "--all-failed")
    assert result.returncode == 0, result.stderr
    assert b"2 message(s) re-queued" in result.stdout
    assert b"note: gone@customer.example is suppressed until" in result.stderr
    assert b"pytrs outbox unsuppress gone@customer.example" in result.stderr
    assert {(await row(db, i)).state for i in (first, second)} == {"pending"}
    nothing = pytrs(cli, "outbox", "retry", "--all-failed")
    assert nothing.returncode == 0 and b"0 message(s) re-queued" in nothing.stdout
    assert pytrs(cli, "outbox", "retry", str(first), "--all-failed").returncode == 2


async def test_a_retried_mail_is_sent_to_the_recipients_refused_before(
    cli: Path, db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    """Failed at the relay, re-queued by the operator, delivered by the real sender."""
    sender = OutboxSender(outbound_config(database_settings, relay), db)
    try:
        recipients = ("a@customer.example", "b@customer.example")
        relay.rcpt_replies = {r: deque(["550 5.7.1 not today"]) for r in recipients}
        row_id = await make_row(db, *recipients)
        assert await sender.run_once() == 1
        assert (await row(db, row_id)).state == "failed" and relay.received == []

        assert pytrs(cli, "outbox", "retry", str(row_id)).returncode == 0
        assert await sender.run_once() == 1
    finally:
        await sender.close()
    [received] = relay.received
    assert set(received.rcpt_tos) == set(recipients)
    done = await row(db, row_id)
    assert (done.state, done.attempts, done.raw) == ("sent", 2, None)
    assert {v["status"] for v in json.loads(done.results).values()} == {"sent"}


async def test_suppressed_and_unsuppress(cli: Path, db: Database) -> None:
    ticket_id, _ = await make_ticket(db)
    now = utcnow()
    async with db.transaction() as conn:
        await outbox_repo.suppress(conn, "Gone@Customer.example", "550 5.1.1 no such user\nmore",
                                   now + timedelta(days=30), ticket_id)  # fmt: skip
        await outbox_repo.suppress(conn, "moved@customer.example", "550 5.1.6 moved",
                                   now + timedelta(days=1))  # fmt: skip
        await outbox_repo.suppress(conn, "old@customer.example", "550 5.1.1",
                                   now - timedelta(seconds=1))  # fmt: skip

    listing = pytrs(cli, "outbox", "suppressed", "--json")
    assert listing.returncode == 0, listing.stderr
    entries = json.loads(listing.stdout)
    assert [(e["address"], e["ticket_id"]) for e in entries] == [
        ("gone@customer.example", ticket_id), ("moved@customer.example", None)
    ]  # fmt: skip
    assert entries[0]["reason"] == "550 5.1.1 no such user\nmore"
    table = pytrs(cli, "outbox", "suppressed").stdout.decode().splitlines()
    assert len(table) == 3 and table[1].startswith("gone@customer.example")
    assert table[1].endswith(f"{ticket_id}  550 5.1.1 no such user")

    lifted = pytrs(cli, "outbox", "unsuppress", "GONE@customer.example", "nobody@customer.example")
    assert lifted.returncode == 1
    assert b"GONE@customer.example: suppression lifted" in lifted.stdout
    assert b"nobody@customer.example: not suppressed" in lifted.stderr
    async with db.connect() as conn:
        left = await outbox_repo.suppressed(
            conn, ["gone@customer.example", "moved@customer.example"]
        )
    assert list(left) == ["moved@customer.example"]
    assert pytrs(cli, "outbox", "unsuppress", "moved@customer.example").returncode == 0


# --- pytrs outbox flush ---

DEFER = "451 4.3.0 greylisted, try again later"


def flush_cli(tmp_path: Path, database: dict[str, Any], relay: RecordingRelay) -> Path:
    """The command's configuration: the same relay as the in-process sender, long retries."""
    extra = (
        f'[outbound]\nrelay = "{relay.address}"\ntimeout_seconds = 5.0\n'
        "retry_backoff_seconds = 600.0\nbatch_size = 2\n"
    )
    return write_config(tmp_path / "flush.toml", database, extra)


async def deferred_rows(
    db: Database, database: dict[str, Any], relay: RecordingRelay, count: int
) -> list[int]:
    """`count` rows the relay answered 451 to, waiting ten minutes for their retry."""
    addresses = [f"c{n}@customer.example" for n in range(count)]
    relay.rcpt_replies.update(dict.fromkeys(addresses, DEFER))
    ids = [await make_row(db, address) for address in addresses]
    sender = OutboxSender(
        outbound_config(database, relay, retry_backoff_seconds=600.0, max_backoff_seconds=3600.0),
        db,
    )
    try:
        while await sender.run_once():
            pass
    finally:
        await sender.close()
    for row_id in ids:
        found = await row(db, row_id)
        assert (found.state, found.attempts) == ("pending", 1)
        assert found.next_attempt_at > utcnow() + timedelta(minutes=5)
    assert relay.received == []
    return ids


async def flush(config: Path, *args: str) -> Any:
    # In a thread: the recording relay answers in this test's loop.
    return await asyncio.to_thread(pytrs, config, "outbox", "flush", *args)


async def test_flush_sends_deferred_mail_once_the_relay_is_fixed(
    tmp_path: Path, db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    ids = await deferred_rows(db, database_settings, relay, 3)
    config = flush_cli(tmp_path, database_settings, relay)
    # Still broken for one recipient: that row stays deferred, with the relay's answer.
    relay.rcpt_replies = {"c2@customer.example": DEFER}
    result = await flush(config)
    out = result.stdout.decode()
    assert result.returncode == 1, result.stderr
    assert out.splitlines()[-1] == "sent 2, still deferred 1, failed 0"
    mid = (await row(db, ids[2])).message_id
    assert f"outbox {ids[2]} {mid}: still deferred until " in out
    assert f"c2@customer.example: {DEFER}" in out
    relay.rcpt_replies = {}  # fixed
    result = await flush(config, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["sent"], document["deferred"], document["failed"]) == (1, 0, 0)
    assert [r["id"] for r in document["rows"]] == [ids[2]]
    # Each mail reached the relay once, and nothing is left to flush.
    assert sorted(r.rcpt_tos for r in relay.received) == [
        (f"c{n}@customer.example",) for n in range(3)
    ]
    assert [(await row(db, i)).state for i in ids] == ["sent"] * 3
    result = await flush(config)
    assert (result.returncode, result.stdout.decode()) == (
        0,
        "sent 0, still deferred 0, failed 0\n",
    )


async def test_flush_ids_and_no_send(
    tmp_path: Path, db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    first, second = await deferred_rows(db, database_settings, relay, 2)
    relay.rcpt_replies = {}
    config = flush_cli(tmp_path, database_settings, relay)
    result = await flush(config, "--ids", str(first), "999999", "--no-send")
    assert result.returncode == 1
    assert b"outbox 999999: no such row" in result.stderr
    assert b"1 outbox row(s) due now" in result.stdout
    assert (await row(db, first)).next_attempt_at <= utcnow()
    assert (await row(db, second)).next_attempt_at > utcnow() + timedelta(minutes=5)
    assert relay.received == []  # --no-send sends nothing
    result = await flush(config, "--ids", str(second))
    assert result.returncode == 0, result.stderr
    mid = (await row(db, second)).message_id
    assert result.stdout.decode().splitlines()[0] == f"outbox {second} {mid}: sent"
    assert [r.rcpt_tos for r in relay.received] == [("c1@customer.example",)]  # only this row
    result = await flush(config, "--ids", str(second))
    assert result.returncode == 1 and b"not deferred (it is sent)" in result.stderr


async def test_flush_beside_a_running_sender_sends_each_row_once(
    tmp_path: Path, db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    ids = await deferred_rows(db, database_settings, relay, 12)
    relay.rcpt_replies = {}
    relay.data_seconds = 0.05  # slow enough for the two senders to overlap
    daemon_sender = OutboxSender(
        outbound_config(database_settings, relay, batch_size=2, retry_backoff_seconds=600.0), db
    )
    running = asyncio.create_task(daemon_sender.run())
    try:
        result = await flush(flush_cli(tmp_path, database_settings, relay))
    finally:
        daemon_sender.stop()
        await asyncio.wait_for(running, 30)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.decode().splitlines()[-1] == "sent 12, still deferred 0, failed 0"
    sent = [(await row(db, i)) for i in ids]
    assert {r.state for r in sent} == {"sent"}
    # Once each: no row was sent by both.
    assert sorted(r.rcpt_tos for r in relay.received) == sorted(
        (f"c{n}@customer.example",) for n in range(12)
    )
