"""`pytrs tickets …` and `pytrs queues`: the real command, as a subprocess, against tickets a
running daemon made from mail received over SMTP (SPEC S2; issue 11 part 3).

The daemon and the command share one configuration file. SMTP is a trusted source here, so
that a mail's X-PyTRS-* headers give its ticket a state, priority or owner; the recording relay
stands in for the smarthost. Command-line calls run in a thread: the daemon lives in the test's
event loop and must keep working meanwhile.
"""

from __future__ import annotations

import asyncio
import email
import json
import re
import subprocess
import time
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from pytrs.commands.tickets_view import age
from pytrs.config import Config, parse_config
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import ticket

from .conftest import RunningDaemon, wait_until
from .helpers import add_sla, all_processed, make_mail, send, set_deadlines, unique_id
from .servers.relay import RecordingRelay
from .test_cli import pytrs
from .test_cli_errors import never_upgraded

LOOP_SECRET = "0123456789abcdef-desk-secret"
ALICE = "Alice Customer <alice@customer.example>"


def config_text(database: dict[str, Any], relay: RecordingRelay) -> str:
    """The configuration both the daemon and the commands read."""
    schema = f'schema = "{database["schema"]}"\n' if database.get("schema") else ""
    return f"""
[database]
url = "{database["url"]}"
{schema}
[smtp]
listen = ["127.0.0.1:0"]
lmtp_listen = []
[web]
listen = ""
[daemon]
drain_seconds = 10.0
[postmaster]
poll_interval_seconds = 0.1
retry_backoff_seconds = 0.1
trusted_sources = ["smtp"]
[outbound]
relay = "{relay.address}"
loop_secret = "{LOOP_SECRET}"
poll_interval_seconds = 0.05
retry_backoff_seconds = 0.05
timeout_seconds = 5.0
[agent_mail]
notify_new_ticket = false
notify_follow_up = false
[[queues]]
name = "Support"
[[queues]]
name = "Sales"
[[system_addresses]]
address = "support@example.com"
name = "Example Support"
queue = "Support"
[[system_addresses]]
address = "help@example.com"
name = "Example Help"
queue = "Support"
[[system_addresses]]
address = "sales@example.com"
name = "Example Sales"
queue = "Sales"
[[agents]]
login = "jdoe"
email = "jdoe@example.com"
queues = ["Support", "Sales"]
"""


@dataclass
class Desk:
    """A running daemon, its database, and the command line on the same configuration."""

    path: Path
    config: Config
    daemon: RunningDaemon
    db: Database
    relay: RecordingRelay

    async def cli(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return await asyncio.to_thread(pytrs, self.path, *args, stdin=stdin)

    async def json(self, *args: str) -> Any:
        result = await self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    async def mail(self, raw: bytes, to: str = "support@example.com") -> None:
        await send(self.daemon.port(), raw, to)

    async def settled(self) -> None:
        await wait_until(lambda: all_processed(self.db), within=30)


@pytest.fixture
async def desk(
    tmp_path: Path,
    database_settings: dict[str, Any],
    db: Database,
    start_daemon: Any,
    relay: RecordingRelay,
) -> Desk:
    path = tmp_path / "pytrs.toml"
    path.write_text(config_text(database_settings, relay))
    config = parse_config(tomllib.loads(path.read_text()), environ={})
    return Desk(path, config, await start_daemon(config), db, relay)


def failed(result: subprocess.CompletedProcess[bytes], code: int, *needles: str) -> str:
    """The one stderr line of a command that failed with `code`."""
    err = result.stderr.decode()
    assert result.returncode == code, (result.returncode, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


async def five_tickets(desk: Desk) -> dict[str, str]:
    """Five tickets, made one after the other so that their order is known; name → TN."""
    mails = {
        "printer": (make_mail(sender=ALICE, subject="Printer on fire"), "support@example.com"),
        "quote": (
            make_mail(
                sender="Bob Buyer <bob@customer.example>",
                subject="Quote please",
                extra={
                    "X-PyTRS-State": "open",
                    "X-PyTRS-Priority": "4 high",
                    "X-PyTRS-Owner": "jdoe",
                },
            ),
            "sales@example.com",
        ),
        "toner": (
            make_mail(
                sender=ALICE,
                subject="Toner empty",
                extra={"X-PyTRS-State": "closed successful"},
            ),
            "support@example.com",
        ),
        "scanner": (
            make_mail(
                sender="Carol Jones <carol@elsewhere.example>",
                subject="Scanner jams",
                extra={"X-PyTRS-State": "pending reminder"},
            ),
            "help@example.com",
        ),
        "percent": (
            make_mail(sender="dave@customer.example", subject="100% broken_now"),
            "support@example.com",
        ),
    }
    numbers = {}
    for name, (raw, to) in mails.items():
        await desk.mail(raw, to)
        await desk.settled()
        [row] = (await desk.json("tickets", "list", "--limit", "1"))["tickets"]
        numbers[name] = row["tn"]
    return numbers


def tns(listing: dict[str, Any]) -> list[str]:
    return [row["tn"] for row in listing["tickets"]]


async def test_list_filters_and_pages(desk: Desk) -> None:
    t = await five_tickets(desk)
    everything = await desk.json("tickets", "list")
    order = [t["percent"], t["scanner"], t["toner"], t["quote"], t["printer"]]
    assert tns(everything) == order and everything["next_before"] is None
    quote = everything["tickets"][3]
    assert quote == {
        "tn": t["quote"],
        "id": quote["id"],
        "title": "Quote please",
        "queue": "Sales",
        "state": "open",
        "state_type": "open",
        "priority": "4 high",
        "customer_user": "bob@customer.example",
        "customer_id": "bob@customer.example",
        "owner": "jdoe",
        "created": quote["created"],
        "changed": quote["changed"],
        "age": "0 m",
        "age_seconds": quote["age_seconds"],
    }
    assert quote["created"].endswith("Z") and 0 <= quote["age_seconds"] < 120

    async def listed(*args: str) -> list[str]:
        return tns(await desk.json("tickets", "list", *args))

    assert await listed("--queue", "Sales") == [t["quote"]]
    assert await listed("--state", "pending reminder") == [t["scanner"]]
    assert await listed("--open") == [t["percent"], t["scanner"], t["quote"], t["printer"]]
    assert await listed("--closed") == [t["toner"]]
    assert await listed("--queue", "Support", "--open") == [
        t["percent"],
        t["scanner"],
        t["printer"],
    ]
    assert await listed("--customer", "ALICE@Customer.example") == [t["toner"], t["printer"]]
    # Search: the title, any case; an article's From (the display name is only there); the
    # customer; and % or _ only as themselves.
    assert await listed("--search", "TONER") == [t["toner"]]
    assert await listed("--search", "jones") == [t["scanner"]]
    assert await listed("--search", "bob@") == [t["quote"]]
    assert await listed("--search", "0% broken_") == [t["percent"]]
    assert await listed("--search", "_") == [t["percent"]]

    # Pages of two: the cursor is the last ticket number of a page, until the last page.
    first = await desk.json("tickets", "list", "--limit", "2")
    assert tns(first) == order[:2] and first["next_before"] == order[1]
    second = await desk.json("tickets", "list", "--limit", "2", "--before", order[1])
    assert tns(second) == order[2:4] and second["next_before"] == order[3]
    third = await desk.json("tickets", "list", "--limit", "2", "--before", order[3])
    assert tns(third) == order[4:] and third["next_before"] is None
    lines = (await desk.cli("tickets", "list", "--jsonl", "--open")).stdout.splitlines()
    assert [json.loads(line)["tn"] for line in lines] == await listed("--open")

    table = await desk.cli("tickets", "list", "--limit", "2")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.decode().splitlines()
    assert header.split()[:4] == ["TICKET", "AGE", "QUEUE", "STATE"] and header.endswith("TITLE")
    # The age is in minutes: this test alone can take over a minute on a loaded machine.
    number, age, unit, queue_name, state = rows[0].split()[:5]
    assert [number, queue_name, state] == [t["percent"], "Support", "new"]
    assert age.isdigit() and int(age) <= 5 and unit == "m"
    assert rows[0].endswith("100% broken_now") and len(rows) == 2
    assert f"--before {order[1]}" in table.stderr.decode()


async def test_list_says_no(desk: Desk) -> None:
    # The body tries to clear the terminal and retitle its window.
    body = "Hello.\x1b[2J\x1b]0;pwned\x07 Bye.\n"
    await desk.mail(make_mail(sender=ALICE, subject="Printer on fire", body=body))
    await desk.settled()
    [row] = (await desk.json("tickets", "list"))["tickets"]
    assert (await desk.json("tickets", "show", row["tn"]))["articles"][0]["body"] == body
    text = (await desk.cli("tickets", "show", row["tn"])).stdout.decode()
    assert "Hello.\ufffd[2J\ufffd]0;pwned\ufffd Bye." in text and "\x1b" not in text
    empty = await desk.cli("tickets", "list", "--queue", "Sales", "--json")
    assert empty.returncode == 1 and b"no tickets match" in empty.stderr
    assert json.loads(empty.stdout) == {"tickets": [], "next_before": None}
    failed(await desk.cli("tickets", "list", "--closed"), 1, "no tickets match")
    failed(
        await desk.cli("tickets", "list", "--queue", "Nope"),
        2,
        "no valid queue 'Nope' (known: 'Junk', 'Misc', 'Postmaster', 'Raw', 'Sales', 'Support')",
    )
    failed(await desk.cli("tickets", "list", "--state", "opened"), 2, "no valid state 'opened'")
    failed(await desk.cli("tickets", "list", "--before", "42"), 1, "--before 42: no ticket")
    failed(await desk.cli("tickets", "list", "--open", "--closed"), 2, "not allowed with")
    failed(await desk.cli("tickets", "list", "--limit", "0"), 2, "--limit")


def mail_with_attachment(message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = ALICE
    msg["To"] = "support@example.com"
    msg["Cc"] = "boss@customer.example"
    msg["Subject"] = "Printer on fire"
    msg["Message-ID"] = message_id
    msg.set_content("It smokes.\nPlease help.\n")
    msg.add_attachment(
        b"%PDF-1.4 smoke" * 10, maintype="application", subtype="pdf", filename="smoke.pdf"
    )
    return msg.as_bytes(policy=SMTP_POLICY)


async def test_show_articles_history_and_raw(desk: Desk) -> None:
    first_id = unique_id()
    raw = mail_with_attachment(first_id)
    await desk.mail(raw)
    await desk.settled()
    [row] = (await desk.json("tickets", "list"))["tickets"]
    tn = row["tn"]
    follow_up = make_mail(
        sender=ALICE, subject=f"Re: [Ticket#{tn}] Printer on fire", body="Now it burns.\n"
    )
    await desk.mail(follow_up)
    await desk.settled()

    shown = await desk.json("tickets", "show", tn)
    assert {key: shown[key] for key in ("tn", "title", "queue", "state", "lock", "type")} == {
        "tn": tn,
        "title": "Printer on fire",
        "queue": "Support",
        "state": "new",  # a follow-up reopens only closed tickets
        "lock": "unlock",
        "type": "Unclassified",
    }
    assert shown["owner"] == "root@localhost" and shown["responsible"] == "root@localhost"
    assert shown["customer_user"] == "alice@customer.example" and "history" not in shown
    first, second = shown["articles"]
    assert first["id"] < second["id"]
    assert {key: first[key] for key in ("sender_type", "channel", "visible_for_customer")} == {
        "sender_type": "customer",
        "channel": "Email",
        "visible_for_customer": True,
    }
    assert first["from"] == ALICE and first["to"] == "support@example.com"
    assert first["cc"] == "boss@customer.example" and first["message_id"] == first_id
    assert first["body"] == "It smokes.\nPlease help.\n" and first["created"].endswith("Z")
    assert first["attachments"] == [
        {
            "name": "smoke.pdf",
            "size": 140,
            "content_type": "application/pdf",
            "disposition": "attachment",
        }
    ]
    assert second["body"] == "Now it burns.\n" and second["attachments"] == []

    with_history = await desk.json("tickets", "show", tn, "--history")
    kinds = [entry["type"] for entry in with_history["history"]]
    assert kinds[:2] == ["NewTicket", "EmailCustomer"] and "FollowUp" in kinds
    assert with_history["history"][0]["name"].startswith(f"%%{tn}%%Support%%3 normal%%new")
    assert with_history["history"][0]["who"] == "root@localhost"

    text = await desk.cli("tickets", "show", tn, "--history")
    assert text.returncode == 0, text.stderr
    out = text.stdout.decode()
    assert out.startswith(f"Ticket {tn}: Printer on fire\n")
    assert "state: new" in out and "customer: alice@customer.example" in out
    assert f"--- article {first['id']}: customer, Email, visible to the customer" in out
    assert "Cc: boss@customer.example" in out
    assert "Attachment: smoke.pdf (140 bytes, application/pdf)" in out
    assert out.index("It smokes.") < out.index("Now it burns.") < out.index("history:")

    stored = await desk.cli("tickets", "show", tn, "--raw", str(first["id"]))
    assert stored.returncode == 0 and stored.stdout == raw
    failed(
        await desk.cli("tickets", "show", "2099010110000001"),
        1,
        "no ticket with number '2099010110000001'",
    )
    await desk.mail(make_mail(sender=ALICE, subject="Another one"))
    await desk.settled()
    other = (await desk.json("tickets", "list", "--limit", "1"))["tickets"][0]["tn"]
    failed(
        await desk.cli("tickets", "show", other, "--raw", str(first["id"])),
        1,
        f"ticket {other}: has no article {first['id']}",
    )
    failed(await desk.cli("tickets", "show", tn, "--raw", "1", "--json"), 2, "--raw")


async def test_queues_and_ages(desk: Desk) -> None:
    t = await five_tickets(desk)
    # The printer ticket came two days, three hours and a bit ago.
    async with desk.db.transaction() as conn:
        await conn.execute(
            update(ticket)
            .where(ticket.c.tn == t["printer"])
            .values(create_time=utcnow() - timedelta(days=2, hours=3, minutes=10))
        )
    overview = await desk.json("queues")
    by_name = {row["queue"]: row for row in overview}
    assert list(by_name) == ["Junk", "Misc", "Postmaster", "Raw", "Sales", "Support"]
    support = by_name["Support"]
    assert support["addresses"] == ["help@example.com", "support@example.com"]
    assert (support["new"], support["open"], support["pending"]) == (2, 0, 1)
    assert support["oldest_open_age"] == "2 d 3 h"
    assert 2 * 86400 + 3 * 3600 <= support["oldest_open_seconds"] < 2 * 86400 + 4 * 3600
    sales = by_name["Sales"]
    assert (sales["new"], sales["open"], sales["pending"], sales["oldest_open_age"]) == (
        0,
        1,
        0,
        "0 m",
    )
    assert by_name["Raw"] == {
        "queue": "Raw",
        "addresses": [],
        "new": 0,
        "open": 0,
        "pending": 0,
        "oldest_open": None,
        "oldest_open_age": None,
        "oldest_open_seconds": None,
    }
    table = (await desk.cli("queues")).stdout.decode().splitlines()
    assert table[0].split() == ["QUEUE", "NEW", "OPEN", "PENDING", "OLDEST", "ADDRESSES"]
    [line] = [line for line in table if line.startswith("Support ")]
    assert line.split() == [
        "Support",
        "2",
        "0",
        "1",
        "2",
        "d",
        "3",
        "h",
        "help@example.com,",
        "support@example.com",
    ]
    listed = await desk.json("tickets", "list", "--search", "printer")
    assert listed["tickets"][0]["age"] == "2 d 3 h"


async def one_ticket(desk: Desk, subject: str, message_id: str = "") -> str:
    """A new ticket from Alice's mail; its number."""
    await desk.mail(make_mail(sender=ALICE, subject=subject, message_id=message_id or None))
    await desk.settled()
    return str((await desk.json("tickets", "list", "--limit", "1"))["tickets"][0]["tn"])


async def test_first_ticket_from_smtp_to_the_relay_and_back(desk: Desk) -> None:
    """The README's "Your first ticket": a customer's mail over SMTP, the ticket listed and
    shown, an agent's answer through the outbox to the relay on the customer's thread, and
    the customer's reply to it back on the same ticket."""
    original = unique_id()
    tn = await one_ticket(desk, "Printer on fire", original)

    listing = await desk.cli("tickets", "list")
    _header, row = listing.stdout.decode().splitlines()
    assert row.split()[:7] == [tn, "0", "m", "Support", "new", "3", "normal"]
    assert "alice@customer.example" in row and row.endswith("Printer on fire")
    shown = (await desk.cli("tickets", "show", tn)).stdout.decode()
    assert shown.startswith(f"Ticket {tn}: Printer on fire\n")
    assert "From: Alice Customer <alice@customer.example>" in shown
    assert "Hello, the printer is on fire." in shown

    answered = await desk.cli(
        "tickets",
        "reply",
        tn,
        "--as",
        "jdoe",
        "--cc",
        "boss@customer.example",
        stdin=b"Please unplug it.\n",
    )
    assert answered.returncode == 0, answered.stderr
    said = answered.stdout.decode()
    assert said.startswith(
        f"ticket {tn}: answer queued for alice@customer.example, boss@customer.example"
    )

    [sent] = await desk.relay.wait_for(1, within=20)
    answer = parsed(sent.data)
    assert sorted(sent.rcpt_tos) == ["alice@customer.example", "boss@customer.example"]
    assert answer["To"].addresses[0].addr_spec == "alice@customer.example"
    assert answer["Cc"].addresses[0].addr_spec == "boss@customer.example"
    assert answer["From"].addresses[0].addr_spec == "support@example.com"
    assert f"[Ticket#{tn}]" in answer["Subject"] and "Printer on fire" in answer["Subject"]
    assert answer["In-Reply-To"] == original and original in answer["References"]
    text = answer.get_content()
    assert "Please unplug it." in text and "> Hello, the printer is on fire." in text

    # The customer answers from a client that drops the ticket number from the subject: the
    # In-Reply-To of the answer alone brings the mail to the ticket.
    await desk.mail(
        make_mail(
            sender=ALICE,
            subject="Re: Printer on fire",
            body="Unplugged, thanks.\n",
            in_reply_to=answer["Message-ID"],
            references=f"{original} {answer['Message-ID']}",
        )
    )
    await desk.settled()
    assert tns(await desk.json("tickets", "list")) == [tn]
    articles = (await desk.json("tickets", "show", tn))["articles"]
    assert [(a["sender_type"], a["visible_for_customer"]) for a in articles] == [
        ("customer", True),
        ("agent", True),
        ("customer", True),
    ]
    assert articles[1]["message_id"] == answer["Message-ID"]
    stored = await desk.cli("tickets", "show", tn, "--raw", str(articles[1]["id"]))
    assert parsed(stored.stdout)["Message-ID"] == answer["Message-ID"]
    assert articles[1]["from"].endswith("<support@example.com>")
    assert articles[1]["body"].startswith("Please unplug it.")
    assert articles[2]["body"] == "Unplugged, thanks.\n"
    kinds = [e["type"] for e in (await desk.json("tickets", "show", tn, "--history"))["history"]]
    assert "SendAnswer" in kinds and kinds[-1] == "FollowUp"
    assert len(desk.relay.received) == 1  # nothing else went out


async def test_reply_json_and_refusals(desk: Desk, tmp_path: Path) -> None:
    tn = await one_ticket(desk, "Printer on fire")
    body = tmp_path / "answer.txt"
    body.write_text("We are on it.\n")
    result = await desk.json(
        "tickets", "reply", tn, "--as", "jdoe", "--file", str(body), "--state", "open"
    )
    assert result == {
        "tn": tn,
        "article_id": result["article_id"],
        "message_id": result["message_id"],
        "recipients": ["alice@customer.example"],
    }
    [sent] = await desk.relay.wait_for(1, within=20)
    assert parsed(sent.data)["Message-ID"] == result["message_id"]
    assert (await desk.json("tickets", "show", tn))["state"] == "open"

    async def reply(*args: str, stdin: bytes = b"Hello\n") -> Any:
        return await desk.cli("tickets", "reply", *args, stdin=stdin)

    failed(await reply(tn, "--as", "jdoe", stdin=b" \n"), 2, "standard input: the answer is empty")
    failed(await reply(tn, "--as", "jdoe", stdin=b"\xff\xfe"), 2, "not UTF-8 text")
    failed(await reply(tn, "--as", "jdoe", stdin=b"a\x00b\n"), 2, "holds a NUL character")
    missing = str(tmp_path / "missing.txt")
    failed(await reply(tn, "--as", "jdoe", "--file", missing), 2, f"{missing}: No such file")
    failed(
        await reply(tn, "--as", "nobody"), 2, "--as nobody: no valid agent 'nobody'", "[[agents]]"
    )
    failed(await reply("2099010110000001", "--as", "jdoe"), 1, "no ticket with number")
    failed(await reply(tn, "--as", "jdoe", "--state", "opened"), 2, "no valid state 'opened'")
    failed(await reply(tn), 2, "--as")
    assert len(desk.relay.received) == 1


async def test_note_set_and_merge(desk: Desk) -> None:
    first = await one_ticket(desk, "Printer on fire")
    second = await one_ticket(desk, "Printer still on fire")

    noted = await desk.cli(
        "tickets", "note", first, "--as", "jdoe", "--subject", "Called", stdin=b"Phoned Alice.\n"
    )
    assert noted.returncode == 0, noted.stderr
    assert noted.stdout.decode().startswith(f"ticket {first}: note added (article ")
    note = (await desk.json("tickets", "show", first))["articles"][-1]
    assert (note["sender_type"], note["visible_for_customer"], note["channel"]) == (
        "agent",
        False,
        "Internal",
    )
    assert (note["subject"], note["body"]) == ("Called", "Phoned Alice.\n")
    trail = (await desk.json("tickets", "show", first, "--history"))["history"]
    assert (trail[-1]["type"], trail[-1]["who"]) == ("AddNote", "jdoe")
    failed(await desk.cli("tickets", "note", first, "--as", "jdoe"), 2, "the note is empty")

    changed = await desk.json(
        "tickets",
        "set",
        first,
        "--state",
        "open",
        "--priority",
        "4 high",
        "--owner",
        "jdoe",
        "--title",
        "Printer fire",
        "--queue",
        "Sales",
        "--as",
        "jdoe",
    )
    assert changed["tn"] == first
    assert changed["changed"]["state"] == {"from": "new", "to": "open"}
    assert changed["changed"]["priority"] == {"from": "3 normal", "to": "4 high"}
    assert changed["changed"]["queue"] == {"from": "Support", "to": "Sales"}
    assert changed["changed"]["owner"] == {"from": "root@localhost", "to": "jdoe"}
    assert changed["changed"]["title"] == {"from": "Printer on fire", "to": "Printer fire"}
    row = (await desk.json("tickets", "list", "--queue", "Sales"))["tickets"][0]
    assert (row["tn"], row["state"], row["priority"], row["owner"], row["title"]) == (
        first,
        "open",
        "4 high",
        "jdoe",
        "Printer fire",
    )
    again = await desk.cli("tickets", "set", first, "--state", "open")
    assert (again.returncode, again.stdout.decode()) == (0, f"ticket {first}: nothing changed\n")
    said = (await desk.cli("tickets", "set", first, "--priority", "5 very high")).stdout.decode()
    assert said == f"ticket {first}: priority '4 high' → '5 very high'\n"
    trail = (await desk.json("tickets", "show", first, "--history"))["history"]
    assert trail[-1]["type"] == "PriorityUpdate" and trail[-1]["who"] == "root@localhost"
    people = await desk.json(
        "tickets", "set", first, "--responsible", "jdoe", "--lock", "lock",
        "--customer-user", "carol@example.org", "--customer-id", "ACME",
    )  # fmt: skip
    assert people["changed"]["responsible"] == {"from": "root@localhost", "to": "jdoe"}
    assert people["changed"]["lock"] == {"from": "unlock", "to": "lock"}
    assert people["changed"]["customer"]["to"] == "ACME / carol@example.org"
    shown = await desk.json("tickets", "show", first, "--history")
    assert (shown["responsible"], shown["lock"], shown["customer_user"]) == (
        "jdoe",
        "lock",
        "carol@example.org",
    )
    kinds = [entry["type"] for entry in shown["history"][-3:]]
    assert kinds == ["ResponsibleUpdate", "Lock", "CustomerUpdate"]
    # Closing unlocks, as Znuny's agent screens do; a closed ticket cannot be locked.
    closed = await desk.json("tickets", "set", first, "--state", "closed successful")
    assert closed["changed"]["lock"] == {"from": "lock", "to": "unlock"}
    failed(
        await desk.cli("tickets", "set", first, "--lock", "lock"), 1,
        "a closed ticket cannot be locked",
    )  # fmt: skip
    reopened = await desk.json("tickets", "set", first, "--state", "open")
    assert reopened["changed"] == {"state": {"from": "closed successful", "to": "open"}}

    failed(await desk.cli("tickets", "set", first), 2, "nothing to change")
    failed(await desk.cli("tickets", "set", first, "--owner", "nobody"), 2, "no valid agent")
    failed(await desk.cli("tickets", "set", first, "--queue", "Nope"), 2, "no valid queue 'Nope'")
    failed(await desk.cli("tickets", "set", "2099010110000001", "--state", "open"), 1, "no ticket")
    failed(await desk.cli("tickets", "set", first, "--state", "merged"), 1, "merged")
    failed(await desk.cli("tickets", "merge", first, "--into", first), 1, "into itself")

    merged = await desk.cli("tickets", "merge", first, "--into", second, "--as", "jdoe")
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.decode() == f"ticket {first}: merged into {second}\n"
    source = await desk.json("tickets", "show", first)
    assert (source["state"], source["merged_into"]) == ("merged", second)
    assert [a["subject"] for a in source["articles"]] == ["Ticket Merged"]
    target = await desk.json("tickets", "show", second)
    subjects = [a["subject"] for a in target["articles"]]
    assert subjects == ["Printer on fire", "Printer still on fire", "Called"]  # oldest first
    assert f"merged into {second}" in (await desk.cli("tickets", "show", first)).stdout.decode()
    assert tns(await desk.json("tickets", "list", "--state", "merged")) == [first]

    refused = f"ticket {first} was merged into {second}: work on that one"
    failed(await desk.cli("tickets", "reply", first, "--as", "jdoe", stdin=b"Hi\n"), 1, refused)
    failed(await desk.cli("tickets", "note", first, "--as", "jdoe", stdin=b"Hi\n"), 1, refused)
    failed(await desk.cli("tickets", "set", first, "--state", "open"), 1, refused)
    failed(await desk.cli("tickets", "merge", second, "--into", first), 1, refused)


async def test_escalation_clocks_pending_time_and_sla(desk: Desk) -> None:
    """`tickets list --escalating`, the clocks in `tickets show`, `set --pending` and `--sla`.
    Two tickets get their deadlines written as the escalation index stores them (one escalated
    two hours ago); the third gets an SLA, and the index its first response deadline. The
    scheduler's rebuild at the daemon's start is long done by then (it runs at once)."""
    late = await one_ticket(desk, "Printer on fire")
    soon = await one_ticket(desk, "Toner empty")
    calm = await one_ticket(desk, "Scanner jams")  # no deadline: not listed
    now = int(time.time())
    await set_deadlines(
        desk.db, late, escalation_response_time=now - 7200, escalation_solution_time=now + 86400
    )
    await set_deadlines(desk.db, soon, escalation_update_time=now + 1800)

    listing = await desk.json("tickets", "list", "--escalating")
    assert tns(listing) == [late, soon]
    clocks = listing["tickets"][0]["escalation"]
    assert clocks["response"]["escalated"] and -7300 < clocks["response"]["seconds_left"] <= -7200
    assert clocks["update"] == {"deadline": None, "seconds_left": None, "escalated": False}
    assert not clocks["solution"]["escalated"] and clocks["solution"]["deadline"].endswith("Z")
    assert listing["tickets"][1]["sla"] is None and listing["tickets"][1]["pending_until"] is None
    table = (await desk.cli("tickets", "list", "--escalating")).stdout.decode().splitlines()
    assert "ESCALATION" in table[0] and "-2 h 0 m escalated" in table[1]
    assert table[2].startswith(soon) and (" 29 m " in table[2] or " 30 m " in table[2])
    text = (await desk.cli("tickets", "show", late)).stdout.decode()
    assert "sla:" not in text and "  escalation (working time left):\n" in text
    assert re.search(r"\n    response  \d{4}-\d\d-\d\d \d\d:\d\d UTC  -2 h 0 m escalated\n", text)
    assert "    solution  " in text and "    update" not in text

    # Only now: a new SLA has the daemon's scheduler rebuild every open ticket's clocks (its
    # next run), which would replace the deadlines written by hand above.
    await add_sla(desk.db, "Gold")
    said = await desk.json("tickets", "set", calm, "--sla", "Gold")
    assert said["changed"]["sla"] == {"from": "", "to": "Gold"}
    shown = await desk.json("tickets", "show", calm)
    assert shown["sla"] == "Gold" and shown["pending_until"] is None
    assert 3000 < shown["escalation"]["response"]["seconds_left"] <= 3600
    assert (
        "  sla: Gold   pending until: -\n"
        in (await desk.cli("tickets", "show", calm)).stdout.decode()
    )
    pending = await desk.json(
        "tickets", "set", soon, "--state", "pending reminder", "--pending", "2099-01-04 09:00"
    )
    assert pending["changed"]["state"]["to"] == "pending reminder"
    shown = await desk.json("tickets", "show", soon)
    assert (shown["sla"], shown["pending_until"]) == (None, "2099-01-04T09:00:00Z")
    failed(await desk.cli("tickets", "set", calm, "--pending", "2020-01-01 10:00"), 2, "past")
    failed(await desk.cli("tickets", "set", calm, "--pending", "soon"), 2, "+30m")
    failed(
        await desk.cli("tickets", "set", calm, "--state", "pending reminder"), 1,
        "needs a pending time",
    )  # fmt: skip
    cleared = await desk.json("tickets", "set", calm, "--sla", "")
    assert cleared["changed"]["sla"] == {"from": "Gold", "to": ""}


def test_on_a_database_never_upgraded(tmp_path: Path, database_settings: dict[str, Any]) -> None:
    """Like every reading command: one line and exit 3, no traceback, nothing created."""
    config = never_upgraded(tmp_path, database_settings)
    for command in (["tickets", "list"], ["tickets", "show", "1"], ["queues"]):
        result = pytrs(config, *command)
        failed(result, 3, "database schema is not at head", "pytrs db upgrade")
    reply = pytrs(config, "tickets", "reply", "1", "--as", "jdoe", stdin=b"Hello\n")
    failed(reply, 3, "database schema is not at head")
    # Bytes that are not UTF-8 (Python's surrogates) can name nothing stored: a usage error.
    failed(pytrs(config, "tickets", "show", "\udcff"), 2, "TN: not UTF-8 text")
    failed(pytrs(config, "tickets", "list", "--search", "a\udcff"), 2, "--search: not UTF-8")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 m"),
        (59, "0 m"),
        (300, "5 m"),
        (3600, "1 h 0 m"),
        (2 * 3600 + 5 * 60 + 59, "2 h 5 m"),
        (86400 - 1, "23 h 59 m"),
        (86400, "1 d 0 h"),
        (2 * 86400 + 3 * 3600 + 59 * 60, "2 d 3 h"),
        (-30, "0 m"),  # a clock that went back: never a negative age
    ],
)
def test_age_as_znuny_shows_it(seconds: int, shown: str) -> None:
    assert age(seconds) == shown


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=default_policy)  # type: ignore[return-value]
