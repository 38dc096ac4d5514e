"""Closing the mail loop through a running daemon: SMTP in, the postmaster, the outbox, and a
recording smarthost out (SPEC S8; REFERENCE §7, §8).

Customers get auto-responses with RFC 3834 headers and the ticket number; bounces,
out-of-office replies, list mail, `noreply@` and pytrs's own mail coming back get none; the
daily limit holds; agents get notifications with a reply token; an agent's answer by mail is
relayed to the customer only when it authenticates (DKIM checked against a real DNS zone, or
the reply token), and a mail to the comment address stays an internal note.
"""

from __future__ import annotations

import asyncio
import base64
import email
from collections.abc import AsyncIterator
from email.policy import default as default_policy
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from pytrs.postmaster.filter_rules import replace_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow

from .conftest import make_config, wait_until
from .helpers import articles, history, make_mail, send, tickets, unique_id
from .servers.dns_zone import DnsZone
from .servers.relay import Received, RecordingRelay

CUSTOMER = "Alice Customer <alice@customer.example>"
AGENT = "jdoe@agents.example"
SECRET = "0123456789abcdef-loop-secret-for-tests"


@pytest.fixture(scope="module")
def dkim_key() -> tuple[bytes, str]:
    """(private key PEM for dkim.sign, TXT record) of selector s1 for agents.example."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


@pytest.fixture
async def zone(dkim_key: tuple[bytes, str]) -> AsyncIterator[DnsZone]:
    server = await DnsZone({"s1._domainkey.agents.example": [dkim_key[1]]}).start()
    try:
        yield server
    finally:
        await server.stop()


def _config(
    database: dict[str, Any], relay: RecordingRelay, zone: DnsZone, **overrides: Any
) -> Any:
    settings: dict[str, Any] = {
        "outbound": {
            "relay": relay.address, "loop_secret": SECRET, "poll_interval_seconds": 0.05,
            "retry_backoff_seconds": 0.05, "timeout_seconds": 5.0, "lease_seconds": 20.0,
        },
        "authentication": {"dns_resolver": zone.address, "dkim_timeout_seconds": 3.0},
        "agents": [{"login": "jdoe", "email": AGENT, "queues": ["Support"]}],
        "agent_mail": {"notify_new_ticket": False, "notify_follow_up": False},
        "auto_responses": [
            {"queue": "Support", "type": "auto reply", "subject": "Re: {{ article.subject }}",
             "body": "Dear {{ customer.full_name }},\nwe opened ticket {{ ticket.tn }}.\n"
                     "{{ quoted }}\n"},
            {"queue": "Support", "type": "auto follow up", "subject": "Re: {{ article.subject }}",
             "body": "Thanks, we added this to {{ ticket.tn }}.\n"},
            {"queue": "Support", "type": "auto reply", "language": "de",
             "subject": "AW: {{ article.subject }}", "body": "Wir haben {{ ticket.tn }}.\n"},
        ],
    }  # fmt: skip
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return make_config(database, **settings)


def _parsed(received: Received) -> email.message.EmailMessage:
    return email.message_from_bytes(received.data, policy=default_policy)  # type: ignore[return-value]


async def _quiet(relay: RecordingRelay, count: int, seconds: float = 1.0) -> None:
    """Give the daemon time to send anything more, then check it sent exactly `count`."""
    await asyncio.sleep(seconds)
    assert len(relay.received) == count, [_parsed(r)["Subject"] for r in relay.received]


async def _settled(db: Any) -> None:
    async def done() -> bool:
        async with db.connect() as conn:
            pending = await conn.execute(
                text("SELECT count(*) FROM inbox_message WHERE state = 'pending'")
            )
            return pending.scalar_one() == 0

    await wait_until(done, within=15)


async def test_auto_reply_on_a_new_ticket(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    daemon = await start_daemon(_config(database_settings, relay, zone))
    original = unique_id()
    await send(daemon.port(), make_mail(sender=CUSTOMER, subject="Printer on fire",
                                        message_id=original))  # fmt: skip
    [reply] = await relay.wait_for(1)
    [ticket] = await tickets(db)
    msg = _parsed(reply)
    assert reply.rcpt_tos == ("alice@customer.example",)
    assert msg["Subject"] == f"Re: [Ticket#{ticket['tn']}] Printer on fire"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == original and original in msg["References"]
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert "X-PyTRS-Loop" in msg
    body = msg.get_content()
    assert "Dear Alice Customer" in body and ticket["tn"] in body
    assert "> Hello, the printer is on fire." in body
    stored = await articles(db, ticket["id"])
    assert [a["article_sender_type_id"] for a in stored] == [3, 2]  # customer, system
    assert stored[1]["a_message_id"] == msg["Message-ID"]
    assert ("SendAutoReply", "%%alice@customer.example") in await history(db, ticket["id"])
    # The language of the mail picks the German variant.
    german = b"Content-Language: de-AT\r\n" + make_mail(sender=CUSTOMER, subject="Drucker")
    await send(daemon.port(), german)
    second = _parsed((await relay.wait_for(2))[1])
    assert second["Subject"].endswith("AW: Drucker") and "Wir haben" in second.get_content()
    # The customer's answer to our auto-reply is a follow-up: it threads by our Message-ID.
    await send(daemon.port(), make_mail(sender=CUSTOMER, subject="Re: hello",
                                        in_reply_to=msg["Message-ID"]))  # fmt: skip
    third = (await relay.wait_for(3))[2]
    assert "we added this to" in _parsed(third).get_content()
    assert len(await tickets(db)) == 2


def _dsn() -> bytes:
    return (
        "From: MAILER-DAEMON@mx.customer.example\r\nTo: support@example.com\r\n"
        f"Subject: Undelivered Mail\r\nMessage-ID: {unique_id()}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nnot delivered\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; bob@customer.example\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n--b--\r\n"
    ).encode()


async def test_no_auto_response_to_robots_lists_and_ourselves(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    daemon = await start_daemon(_config(database_settings, relay, zone))
    port = daemon.port()
    await send(port, _dsn(), sender="")
    await send(port, make_mail(subject="Out of office", extra={"Auto-Submitted": "auto-replied"}))
    await send(
        port,
        make_mail(
            subject="Weekly digest",
            extra={
                "List-Id": "<news.lists.example>",
                "List-Unsubscribe": "<mailto:leave@lists.example>",
            },
        ),
    )
    await send(port, make_mail(sender="No Reply <noreply@shop.example>", subject="Your order"))
    await send(port, make_mail(sender="Support <support@example.com>", subject="from ourselves"))
    await _settled(db)
    await _quiet(relay, 0)
    # Our own auto-reply coming back (a forwarding loop) is recognised and not answered.
    await send(port, make_mail(sender=CUSTOMER, subject="a real question"))
    [ours] = await relay.wait_for(1)
    await send(port, ours.data, sender="")
    await _settled(db)
    await _quiet(relay, 1)
    async with db.connect() as conn:
        traces = [r[0] for r in await conn.execute(text("SELECT trace FROM inbox_message"))]
    joined = " ".join(t for t in traces if t)
    for reason in ("bounce", "auto-reply", "mailing-list", "no-auto-response-address",
                   "system-address", "own-mail"):  # fmt: skip
        assert reason in joined, reason


async def test_daily_limit_per_address(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    config = _config(database_settings, relay, zone,
                     loop_protection={"max_auto_responses_per_address_per_day": 2})  # fmt: skip
    daemon = await start_daemon(config)
    for n in range(4):
        await send(daemon.port(), make_mail(sender=CUSTOMER, subject=f"question {n}"))
    await _settled(db)
    await relay.wait_for(2)
    await _quiet(relay, 2)
    assert len(await tickets(db)) == 4  # the mail is handled; only the answers stop


def _agent_mail(tn: str, *, to: str = "support@example.com", body: str = "") -> bytes:
    return make_mail(
        sender=f"John Doe <{AGENT}>",
        to=to,
        subject=f"Re: [Ticket#{tn}] Printer on fire",
        cc="Bob <bob@customer.example>, support+comment@example.com",
        body=body or "We are sending a technician.\n\nOn Monday, Alice wrote:\n> help\n",
    )


async def test_agent_answer_relayed_only_when_authenticated(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone,
    dkim_key: tuple[bytes, str],
) -> None:  # fmt: skip
    config = _config(database_settings, relay, zone, auto_responses=[])
    daemon = await start_daemon(config)
    customer_id = unique_id()
    await send(daemon.port(), make_mail(sender=CUSTOMER, message_id=customer_id))
    await _settled(db)
    [ticket] = await tickets(db)
    # Unsigned: handled as customer mail from a stranger (so a ticket of its own), flagged,
    # nothing relayed.
    await send(daemon.port(), _agent_mail(ticket["tn"]), sender=AGENT)
    await _settled(db)
    await _quiet(relay, 0, 0.5)
    [_, stranger] = await tickets(db)
    [flagged] = await articles(db, stranger["id"])
    assert flagged["article_sender_type_id"] == 3
    assert any("not authenticated" in n for _, n in await history(db, stranger["id"]))
    # DKIM-signed by the agent's domain: an agent article, relayed to the customer only.
    raw = _agent_mail(ticket["tn"])
    signed = dkim.sign(raw, b"s1", b"agents.example", dkim_key[0]) + raw
    await send(daemon.port(), signed, sender=AGENT)
    [relayed] = await relay.wait_for(1)
    # The customer and the agent's Cc — not our own (comment) address.
    assert relayed.rcpt_tos == ("alice@customer.example", "bob@customer.example")
    msg = _parsed(relayed)
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg["In-Reply-To"] == customer_id
    assert "Auto-Submitted" not in msg  # written by a person
    body = msg.get_content()
    assert "technician" in body and "Alice wrote" not in body  # quoted history trimmed
    answer = (await articles(db, ticket["id"]))[-1]
    assert (answer["article_sender_type_id"], answer["is_visible_for_customer"]) == (1, 1)
    assert ("SendAnswer", "%%alice@customer.example, bob@customer.example") in await history(
        db, ticket["id"]
    )
    # Signed, to the comment address: an internal note, not relayed.
    note = _agent_mail(ticket["tn"], to="support+comment@example.com", body="checked logs\n")
    note = dkim.sign(note, b"s1", b"agents.example", dkim_key[0]) + note
    await send(daemon.port(), note, rcpts="support+comment@example.com", sender=AGENT)
    await _settled(db)
    await _quiet(relay, 1, 0.5)
    internal = (await articles(db, ticket["id"]))[-1]
    assert (internal["article_sender_type_id"], internal["is_visible_for_customer"]) == (1, 0)


async def test_notification_reply_token_authenticates_the_agent(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    config = _config(database_settings, relay, zone, auto_responses=[],
                     agent_mail={"notify_new_ticket": True})  # fmt: skip
    daemon = await start_daemon(config)
    await send(daemon.port(), make_mail(sender=CUSTOMER, subject="Printer on fire"))
    [notice] = await relay.wait_for(1)
    [ticket] = await tickets(db)
    msg = _parsed(notice)
    assert notice.rcpt_tos == (AGENT,)
    assert msg["Auto-Submitted"] == "auto-generated"
    reply_to = msg["Reply-To"].addresses[0].addr_spec
    assert reply_to.startswith("support+r") and reply_to.endswith("@example.com")
    assert msg["Subject"] == f"[Ticket#{ticket['tn']}] New ticket: Printer on fire"
    body = msg.get_content()
    assert f"New ticket Ticket#{ticket['tn']} in queue Support" in body
    assert "> Hello, the printer is on fire." in body
    assert "support+comment@example.com" in body  # how to add an internal note
    # The agent answers from a mail client without DKIM: the token in Reply-To is enough.
    answer = make_mail(
        sender=f"John Doe <{AGENT}>", to=reply_to, subject=f"Re: {msg['Subject']}",
        body="On it.\n", in_reply_to=msg["Message-ID"],
    )  # fmt: skip
    await send(daemon.port(), answer, rcpts=reply_to, sender=AGENT)
    relayed = (await relay.wait_for(2))[1]
    assert relayed.rcpt_tos == ("alice@customer.example",)
    assert reply_to not in relayed.data.decode()  # the token never reaches the customer
    # The same token does not work for another ticket.
    await send(daemon.port(), make_mail(sender=CUSTOMER, subject="second problem"))
    await relay.wait_for(3)  # its notification
    [_, other] = await tickets(db)
    forged = make_mail(sender=f"John Doe <{AGENT}>", to=reply_to, body="hi\n",
                       subject=f"Re: [Ticket#{other['tn']}] second problem")  # fmt: skip
    await send(daemon.port(), forged, rcpts=reply_to, sender=AGENT)
    await _settled(db)
    await _quiet(relay, 3)


async def test_customer_language_picks_the_response(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    """The customer user's UserLanguage preference wins over the mail's Content-Language."""
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "INSERT INTO customer_user (login, email, customer_id, first_name, last_name,"
                " valid_id, create_time, create_by, change_time, change_by) VALUES ('alice',"
                " 'alice@customer.example', 'ACME', 'Alice', 'Kunde', 1, CURRENT_TIMESTAMP, 1,"
                " CURRENT_TIMESTAMP, 1)"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO customer_preferences (user_id, preferences_key, preferences_value)"
                " VALUES ('alice', 'UserLanguage', 'de')"
            )
        )
    daemon = await start_daemon(_config(database_settings, relay, zone))
    english = b"Content-Language: en\r\n" + make_mail(sender=CUSTOMER, subject="Drucker")
    await send(daemon.port(), english)
    [reply] = await relay.wait_for(1)
    assert "Wir haben" in _parsed(reply).get_content()


async def test_auto_reject_and_auto_reply_for_a_new_ticket(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    """A follow-up to a closed ticket: `auto reject` where the queue rejects, `auto reply/new
    ticket` where it opens a new one (REFERENCE §8)."""
    responses = [
        {"queue": "Billing", "type": "auto reject", "subject": "Closed: {{ article.subject }}",
         "body": "Ticket {{ ticket.tn }} is closed; please write a new mail.\n"},
        {"queue": "Sales", "type": "auto reply/new ticket", "subject": "New: {{ article.subject }}",
         "body": "We opened {{ ticket.tn }} for you.\n"},
        {"queue": "Sales", "type": "auto reply", "subject": "Re: {{ article.subject }}",
         "body": "Thanks.\n"},
    ]  # fmt: skip
    daemon = await start_daemon(_config(database_settings, relay, zone, auto_responses=responses))
    for to in ("billing@example.com", "sales@example.com"):
        await send(daemon.port(), make_mail(sender=CUSTOMER, to=to, subject=f"to {to}"), to)
    await relay.wait_for(1)  # Sales' auto reply; Billing has none for new tickets
    billing, sales = await tickets(db)
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE ticket SET ticket_state_id = 2"))  # closed successful
    for t, to in ((billing, "billing@example.com"), (sales, "sales@example.com")):
        subject = f"Re: [Ticket#{t['tn']}] {t['title']}"
        await send(daemon.port(), make_mail(sender=CUSTOMER, to=to, subject=subject), to)
    received = await relay.wait_for(3)
    bodies = sorted(_parsed(r).get_content().replace("\r\n", "\n") for r in received[1:])
    fresh = (await tickets(db))[-1]
    assert bodies == sorted(
        [f"Ticket {billing['tn']} is closed; please write a new mail.\n",
         f"We opened {fresh['tn']} for you.\n"]
    )  # fmt: skip
    assert ("SendAutoReject", "%%alice@customer.example") in await history(db, billing["id"])


async def test_an_unanswerable_sender_does_not_fail_the_mail(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    """An address no relay would take (no domain) gets no auto-response, and says why; the
    mail itself becomes its ticket as usual, never quarantined for it."""
    daemon = await start_daemon(_config(database_settings, relay, zone))
    await send(daemon.port(), make_mail(sender="Root <root@localhost>", subject="cron output"))
    await _settled(db)
    await _quiet(relay, 0, 0.5)
    assert [t["title"] for t in await tickets(db)] == ["cron output"]
    async with db.connect() as conn:
        state, trace = (await conn.execute(text("SELECT state, trace FROM inbox_message"))).one()
    assert state == "done" and "no auto reply" in trace


def _raw(*headers: str, body: str = "Hello, the printer is on fire.\r\n") -> bytes:
    """A mail written byte for byte: what a hostile client sends, not what a library makes."""
    fields = [*headers, "To: support@example.com", f"Message-ID: {unique_id()}",
              "Date: Mon, 07 Dec 2026 10:00:00 +0000"]  # fmt: skip
    return ("\r\n".join(fields) + "\r\n\r\n" + body).encode()


async def test_auto_responses_go_only_to_addresses_not_to_display_text(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    """An encoded display name that decodes to "victim@…, x" is a name, not a recipient."""
    daemon = await start_daemon(_config(database_settings, relay, zone))
    await send(daemon.port(), _raw(
        "From: =?utf-8?q?victim=40external.example=2C_x?= <att@evil.example>",
        "Subject: first",
    ))  # fmt: skip
    await send(daemon.port(), _raw(
        "From: Mallory <mallory@evil.example>",
        "Reply-To: =?utf-8?b?dmljdGltQGV4dGVybmFsLmV4YW1wbGUsIHk=?= <reply@evil.example>",
        "Subject: second",
    ))  # fmt: skip
    await _settled(db)
    first, second = sorted(await relay.wait_for(2), key=lambda r: _parsed(r)["Subject"])
    await _quiet(relay, 2, 0.3)
    assert first.rcpt_tos == ("att@evil.example",)
    assert second.rcpt_tos == ("reply@evil.example",)
    assert [a.addr_spec for a in _parsed(first)["To"].addresses] == ["att@evil.example"]
    assert [t["customer_user_id"] for t in await tickets(db)] == [
        "att@evil.example",
        "mallory@evil.example",
    ]


async def test_one_auto_response_has_a_bounded_number_of_recipients(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone
) -> None:
    """A Reply-To of 1,000 addresses gets one reply to the first few, never a spam run."""
    daemon = await start_daemon(_config(database_settings, relay, zone))
    many = ", ".join(f"u{n}@spam.example" for n in range(1000))
    await send(daemon.port(), _raw(f"Reply-To: {many}", "From: a@evil.example", "Subject: buy"))
    await _settled(db)
    [reply] = await relay.wait_for(1)
    await _quiet(relay, 1, 0.3)
    assert reply.rcpt_tos == tuple(f"u{n}@spam.example" for n in range(5))
    async with db.connect() as conn:
        trace = (await conn.execute(text("SELECT trace FROM inbox_message"))).scalar_one()
    assert "995 more recipients than max_recipients_per_mail (5)" in trace


async def test_an_answer_is_relayed_only_to_a_customer_that_is_one_address(
    database_settings: Any, db: Any, start_daemon: Any, relay: RecordingRelay, zone: DnsZone,
    dkim_key: tuple[bytes, str],
) -> None:  # fmt: skip
    """A web-form rule takes the customer from the body: text that holds two addresses is no
    address to relay an agent's answer to."""
    await replace_rules(db, [Rule("010-web-form", (MatchRow("Body", r"Email: (\S.*)"),),
                                  (SetRow("X-PyTRS-CustomerUser", "[***]"),))])  # fmt: skip
    daemon = await start_daemon(_config(database_settings, relay, zone, auto_responses=[]))
    form = "Email: alice@customer.example, victim@external.example\n"
    await send(daemon.port(), make_mail(sender="form@web.example", body=form))
    await _settled(db)
    [ticket] = await tickets(db)
    assert ticket["customer_user_id"] == "alice@customer.example, victim@external.example"
    raw = _agent_mail(ticket["tn"])
    await send(daemon.port(), dkim.sign(raw, b"s1", b"agents.example", dkim_key[0]) + raw,
               sender=AGENT)  # fmt: skip
    await _settled(db)
    await _quiet(relay, 0, 0.5)
    async with db.connect() as conn:
        traces = [r[0] for r in await conn.execute(text("SELECT trace FROM inbox_message"))]
    assert "not one e-mail address" in traces[-1]
