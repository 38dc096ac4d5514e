"""The routing policy through the worker and a real database (REFERENCE §1.2, §4, §5; SPEC S7).

Each test stores mail in the inbox as the gateway would, runs a postmaster worker until the
inbox is drained, and checks tickets, articles, history and the routing trace: follow-up options
on open and closed tickets, follow-up lock and state headers, merged tickets, bounces, body,
attachment and external ticket numbers, sender-bound follow-ups, and one mail sent to several
system addresses.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from sqlalchemy import text

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.filter_rules import replace_rules
from pytrs.postmaster.filters import MatchRow, Rule, SetRow
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.schema.database import Database
from pytrs.vocabulary import znuny
from pytrs.vocabulary.inbox import InboxItem

from .conftest import make_config
from .helpers import articles, history, inbox_states, make_mail, tickets, unique_id

CUSTOMER = "Alice Customer <alice@customer.example>"


class Flow:
    """Store mail as the gateway would and route it with one worker."""

    def __init__(self, config: Config, db: Database) -> None:
        self.config = config
        self.db = db

    async def start(self) -> Flow:
        await provision(self.db, self.config)
        return self

    async def deliver(self, raw: bytes, *recipients: str, source: str = "smtp") -> None:
        async with self.db.transaction() as conn:
            await inbox_repo.store(
                conn,
                [
                    InboxItem(source, raw, recipient=r)
                    for r in recipients or ("support@example.com",)
                ],
            )
        addresses = AddressBook()
        await addresses.reload(self.db)
        await PostmasterWorker(self.config, self.db, addresses).drain()

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.db.transaction() as conn:
            result = await conn.execute(text(statement), params)
            return list(result) if result.returns_rows else []

    async def close(self, tn: str, state: str = "closed successful") -> None:
        await self.sql(
            "UPDATE ticket SET ticket_state_id = :s WHERE tn = :tn",
            s=znuny.STATE_IDS[state],
            tn=tn,
        )

    async def traces(self) -> list[dict[str, Any]]:
        rows = await self.sql("SELECT trace FROM inbox_message WHERE trace IS NOT NULL ORDER BY id")
        return [json.loads(r[0]) for r in rows]


async def _flow(database_settings: dict[str, Any], **overrides: Any) -> tuple[Flow, Database]:
    from pytrs.schema import migrate
    from pytrs.schema.database import create_database

    config = make_config(database_settings, **overrides)
    db = create_database(config.database)
    await migrate.upgrade(db)
    return await Flow(config, db).start(), db


async def _first_ticket(flow: Flow, **kw: Any) -> dict[str, Any]:
    message_id = unique_id()
    await flow.deliver(make_mail(message_id=message_id, **kw), kw.get("to", "support@example.com"))
    ticket = (await tickets(flow.db))[-1]
    ticket["message_id"] = message_id
    return ticket


def _reply(ticket: dict[str, Any], **kw: Any) -> bytes:
    return make_mail(subject=f"Re: [Ticket#{ticket['tn']}] {ticket['title']}", **kw)


# --- follow-up options on open and closed tickets ---------------------------------------------


async def test_follow_up_options_on_open_and_closed_tickets(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        support = await _first_ticket(flow, to="support@example.com")
        sales = await _first_ticket(flow, to="sales@example.com")
        billing = await _first_ticket(flow, to="billing@example.com")
        # Open tickets take follow-ups whatever the queue's option.
        for t in (support, sales, billing):
            await flow.deliver(_reply(t, sender=CUSTOMER), "support@example.com")
        assert [len(await articles(db, t["id"])) for t in (support, sales, billing)] == [2, 2, 2]
        for t in (support, sales, billing):
            await flow.close(t["tn"])
            await flow.deliver(_reply(t, sender=CUSTOMER), "support@example.com")
        after = {t["id"]: t for t in await tickets(db)}
        # possible: reopened; reject: stored, still closed; new_ticket: a fresh linked ticket.
        assert after[support["id"]]["state"] == "open"
        assert len(await articles(db, support["id"])) == 3
        assert after[billing["id"]]["state"] == "closed successful"
        assert len(await articles(db, billing["id"])) == 3
        assert ("FollowUp", f"%%{billing['tn']}%%Follow up rejected.") in await history(
            db, billing["id"]
        )
        assert len(await articles(db, sales["id"])) == 2
        [fresh] = [
            t for i, t in after.items() if i not in (support["id"], sales["id"], billing["id"])
        ]
        assert (fresh["queue"], fresh["state"]) == ("Support", "new")
        assert f"Ticket#{sales['tn']}" not in fresh["title"]  # the old number is cleaned off
        kinds = [k for k, _ in await history(db, fresh["id"])]
        assert "TicketLinkAdd" in kinds
        assert [t["action"] for t in (await flow.traces())[-3:]] == [
            "follow_up", "new_ticket", "reject",
        ]  # fmt: skip
    finally:
        await db.close()


async def test_follow_up_lock_locks_a_reopened_ticket_to_its_owner(database_settings: Any) -> None:
    flow, db = await _flow(
        database_settings,
        queues=[{"name": "Support", "follow_up": "possible", "follow_up_lock": True}],
        system_addresses=[{"address": "support@example.com", "queue": "Support"}],
        agents=[{"login": "jdoe", "email": "jdoe@example.com", "queues": ["Support"]}],
    )
    try:
        first = await _first_ticket(flow, sender=CUSTOMER)
        second = await _first_ticket(flow, sender=CUSTOMER)
        [agent_id] = [r[0] for r in await flow.sql("SELECT id FROM users WHERE login = 'jdoe'")]
        await flow.sql("UPDATE ticket SET user_id = :u WHERE id = :t", u=agent_id, t=first["id"])
        for t in (first, second):
            await flow.close(t["tn"])
            await flow.deliver(_reply(t, sender=CUSTOMER))
        after = {t["id"]: t for t in await tickets(db)}
        # Owned by an agent: locked to them; owned by nobody (the system user): left unlocked.
        assert after[first["id"]]["ticket_lock_id"] == 2
        assert after[second["id"]]["ticket_lock_id"] == 1
        assert after[first["id"]]["state"] == after[second["id"]]["state"] == "open"
    finally:
        await db.close()


async def test_follow_up_headers_keep_state_and_change_the_ticket(database_settings: Any) -> None:
    flow, db = await _flow(
        database_settings,
        agents=[{"login": "jdoe", "email": "jdoe@example.com", "queues": ["Support"]}],
    )
    try:
        t = await _first_ticket(flow, sender=CUSTOMER)
        await flow.sql("UPDATE ticket SET ticket_state_id = 6 WHERE id = :t", t=t["id"])  # pending
        await replace_rules(db, [
            Rule("010-keep", (MatchRow("Body", "just saying thanks"),),
                 (SetRow("X-OTRS-FollowUp-State-Keep", "1"),)),
            Rule("020-escalate", (MatchRow("Body", "urgent"),),
                 (SetRow("X-PyTRS-FollowUp-Priority", "5 very high"),
                  SetRow("X-PyTRS-FollowUp-Queue", "Sales"),
                  SetRow("X-PyTRS-FollowUp-Owner", "jdoe"),
                  SetRow("X-PyTRS-FollowUp-Title", "Escalated"),
                  SetRow("X-PyTRS-FollowUp-State", "pending reminder"),
                  SetRow("X-PyTRS-FollowUp-IsVisibleForCustomer", "0"))),
        ])  # fmt: skip
        await flow.deliver(_reply(t, sender=CUSTOMER, body="just saying thanks\n"))
        [kept] = await tickets(db)
        assert kept["state"] == "pending reminder"
        await flow.deliver(_reply(t, sender=CUSTOMER, body="urgent!\n"))
        [changed] = await tickets(db)
        assert (changed["ticket_priority_id"], changed["queue"], changed["title"]) == (
            5, "Sales", "Escalated",
        )  # fmt: skip
        [agent_id] = [r[0] for r in await flow.sql("SELECT id FROM users WHERE login = 'jdoe'")]
        assert changed["user_id"] == agent_id
        assert changed["state"] == "pending reminder"
        last = (await articles(db, t["id"]))[-1]
        assert last["is_visible_for_customer"] == 0
        kinds = [k for k, _ in await history(db, t["id"])]
        for kind in ("PriorityUpdate", "Move", "OwnerUpdate", "TitleUpdate"):
            assert kind in kinds
        # A plain follow-up moves a pending ticket to open.
        await flow.deliver(_reply(t, sender=CUSTOMER, body="any news?\n"))
        await flow.sql("UPDATE ticket SET ticket_state_id = 6 WHERE id = :t", t=t["id"])
        await flow.deliver(_reply(t, sender=CUSTOMER, body="hello?\n"))
        assert (await tickets(db))[0]["state"] == "open"
    finally:
        await db.close()


async def test_new_ticket_headers_set_owner_sender_type_and_visibility(
    database_settings: Any,
) -> None:
    flow, db = await _flow(
        database_settings,
        agents=[{"login": "jdoe", "email": "jdoe@example.com", "queues": ["Support"]}],
    )
    try:
        await replace_rules(db, [
            Rule("010-monitoring", (MatchRow("From", "EMAILADDRESS:nagios@.*"),),
                 (SetRow("X-OTRS-Owner", "jdoe"), SetRow("X-OTRS-SenderType", "system"),
                  SetRow("X-OTRS-IsVisibleForCustomer", "0"), SetRow("X-OTRS-Lock", "lock"))),
            Rule("020-bad-owner", (MatchRow("Subject", "nobody"),),
                 (SetRow("X-PyTRS-Owner", "no-such-agent"),)),
        ])  # fmt: skip
        await flow.deliver(make_mail(sender="nagios@monitor.example", subject="disk full"))
        await flow.deliver(make_mail(sender=CUSTOMER, subject="nobody owns this"))
        monitored, other = await tickets(db)
        [agent_id] = [r[0] for r in await flow.sql("SELECT id FROM users WHERE login = 'jdoe'")]
        assert (monitored["user_id"], monitored["ticket_lock_id"]) == (agent_id, 2)
        [a] = await articles(db, monitored["id"])
        assert (a["article_sender_type_id"], a["is_visible_for_customer"]) == (2, 0)
        assert other["user_id"] == 1  # unknown agent: default kept, noted in the trace
        assert any("no-such-agent" in r for r in (await flow.traces())[-1]["reasons"])
    finally:
        await db.close()


# --- merged tickets, bounces, body/attachment/external numbers ---------------------------------


async def test_follow_up_to_a_merged_ticket_goes_to_its_target(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        a, b, c = [await _first_ticket(flow, sender=CUSTOMER) for _ in range(3)]
        # a was merged into b, b into c (as the web view's merge will record it).
        merged = znuny.STATE_IDS["merged"]
        for source, target in ((a, b), (b, c)):
            await flow.sql("UPDATE ticket SET ticket_state_id = :s WHERE id = :t", s=merged,
                           t=source["id"])  # fmt: skip
            await flow.sql(
                "INSERT INTO ticket_history (name, history_type_id, ticket_id, type_id, queue_id,"
                " owner_id, priority_id, state_id, create_time, create_by, change_time, change_by)"
                " VALUES (:n, :h, :t, 1, 1, 1, 3, :s, CURRENT_TIMESTAMP, 1, CURRENT_TIMESTAMP, 1)",
                n=f"%%{source['tn']}%%{source['id']}%%{target['tn']}%%{target['id']}",
                h=znuny.history_type_id("Merged"),
                t=source["id"],
                s=merged,
            )
        await flow.deliver(_reply(a, sender=CUSTOMER))
        assert len(await articles(db, c["id"])) == 2
        assert len(await articles(db, a["id"])) == 1
        trace = (await flow.traces())[-1]
        assert trace["ticket"] == c["tn"] and "merged" in " ".join(trace["reasons"])
        # A reply by References to a's first article also lands on c.
        await flow.deliver(make_mail(sender=CUSTOMER, subject="more", references=a["message_id"]))
        assert len(await articles(db, c["id"])) == 3
    finally:
        await db.close()


def _dsn(original_id: str, recipient: str) -> bytes:
    """An RFC 3464 delivery status notification for one of our messages."""
    return (
        "From: MAILER-DAEMON@mx.customer.example\r\n"
        "To: support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {unique_id('mx.customer.example')}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nSubject: hello\r\n"
        "\r\n--b1--\r\n"
    ).encode()


async def test_bounce_goes_to_the_bounced_articles_ticket(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        t = await _first_ticket(flow, sender=CUSTOMER, to="billing@example.com")
        await flow.close(t["tn"])  # closed, and its queue rejects follow-ups
        await flow.deliver(_dsn(t["message_id"], "alice@customer.example"))
        [only] = await tickets(db)
        assert len(await articles(db, only["id"])) == 2
        trace = (await flow.traces())[-1]
        assert (trace["action"], trace["followup_via"]) == ("follow_up", "bounce")
        [error] = await flow.sql("SELECT article_id, log_message FROM article_data_mime_send_error")
        first_article = (await articles(db, only["id"]))[0]["article_id"]
        assert error[0] == first_article and "5.1.1" in error[1]
        # The address bounced for good: no more mail to it for a while, and the ticket says so.
        [(address, reason)] = await flow.sql("SELECT address, reason FROM address_suppression")
        assert address == "alice@customer.example" and "5.1.1" in reason
        assert any(n.startswith("%%No mail to alice@customer.example until")
                   for _, n in await history(db, only["id"]))  # fmt: skip
    finally:
        await db.close()


async def test_body_and_attachment_numbers_only_when_configured(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        for enabled in (False, True):
            options = {"followup_check_body": enabled, "followup_check_attachments": enabled}
            flow = await Flow(make_config(database_settings, postmaster=options), db).start()
            t = await _first_ticket(flow, sender=CUSTOMER)
            await flow.deliver(make_mail(sender=CUSTOMER, subject="about my ticket",
                                         body=f"See Ticket#{t['tn']} please.\n"))  # fmt: skip
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = CUSTOMER, "support@example.com", "scan"
            msg.set_content("see attachment")
            msg.add_attachment(f"ref: Ticket#{t['tn']}\n".encode(), maintype="text",
                               subtype="plain", filename="ref.txt")  # fmt: skip
            await flow.deliver(msg.as_bytes(policy=SMTP))
            count = len(await articles(db, t["id"]))
            assert count == (3 if enabled else 1), enabled
            if enabled:
                vias = [tr["followup_via"] for tr in (await flow.traces())[-2:]]
                assert vias == ["body", "attachment"]
    finally:
        await db.close()


async def test_external_ticket_numbers(database_settings: Any) -> None:
    flow, db = await _flow(
        database_settings,
        external_ticket_numbers=[{
            "name": "vendor", "number_pattern": r"Incident-(\d{6})", "dynamic_field": "Vendor",
            "from_address_pattern": r"@vendor\.example$", "sender_type": "system",
            "visible_for_customer": False,
        }],
    )  # fmt: skip
    try:
        vendor = "Vendor Desk <desk@vendor.example>"
        await flow.deliver(make_mail(sender=vendor, subject="Incident-123456 opened"))
        [t] = await tickets(db)
        stored = await flow.sql(
            "SELECT v.value_text FROM dynamic_field_value v JOIN dynamic_field f"
            " ON f.id = v.field_id WHERE f.name = 'Vendor' AND v.object_id = :t",
            t=t["id"],
        )
        assert [r[0] for r in stored] == ["123456"]
        await flow.deliver(make_mail(sender=vendor, subject="Update on Incident-123456"))
        # Same number from another sender: the rule does not apply, so a ticket of its own.
        await flow.deliver(make_mail(sender=CUSTOMER, subject="Incident-123456?"))
        assert len(await tickets(db)) == 2
        first_articles = await articles(db, t["id"])
        assert len(first_articles) == 2
        assert (first_articles[1]["article_sender_type_id"],
                first_articles[1]["is_visible_for_customer"]) == (2, 0)  # fmt: skip
        assert (await flow.traces())[1]["followup_via"] == "external"
    finally:
        await db.close()


# --- sender-bound follow-ups ------------------------------------------------------------------


async def test_stranger_with_a_ticket_number_gets_a_new_ticket(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        t = await _first_ticket(flow, sender=CUSTOMER, cc="Bob <bob@customer.example>")
        await flow.deliver(_reply(t, sender="Mallory <mallory@evil.example>"))
        await flow.deliver(_reply(t, sender="Bob <bob@customer.example>"))  # was on Cc
        await flow.deliver(_reply(t, sender=CUSTOMER))
        # A stranger who quotes a real reply (References) is a correspondent of the thread.
        await flow.deliver(_reply(t, sender="Carol <carol@partner.example>",
                                  references=t["message_id"]))  # fmt: skip
        all_tickets = await tickets(db)
        assert len(all_tickets) == 2
        assert len(await articles(db, t["id"])) == 4
        stranger = all_tickets[1]
        assert stranger["customer_user_id"] == "mallory@evil.example"
        assert f"Ticket#{t['tn']}" not in stranger["title"]
        trace = (await flow.traces())[1]
        assert trace["action"] == "new_ticket" and trace["linked_ticket"] == t["tn"]
        assert any("neither customer nor correspondent" in r for r in trace["reasons"])
    finally:
        await db.close()


async def test_stranger_follow_up_kept_internal_when_configured(database_settings: Any) -> None:
    flow, db = await _flow(database_settings, postmaster={"unknown_sender_followup": "internal"})
    try:
        t = await _first_ticket(flow, sender=CUSTOMER)
        await flow.close(t["tn"])
        await flow.deliver(_reply(t, sender="Mallory <mallory@evil.example>"))
        [only] = await tickets(db)
        assert only["state"] == "closed successful"  # a stranger does not reopen the ticket
        last = (await articles(db, t["id"]))[-1]
        assert last["is_visible_for_customer"] == 0
        assert any("kept internal for review" in n for _, n in await history(db, t["id"]))
        assert (await flow.traces())[-1]["review"] is True
        # An internal article does not make its sender a correspondent.
        await flow.deliver(_reply(t, sender="Mallory <mallory@evil.example>"))
        assert (await articles(db, t["id"]))[-1]["is_visible_for_customer"] == 0
    finally:
        await db.close()


async def test_mail_claiming_our_own_address_is_a_strangers(database_settings: Any) -> None:
    # support@example.com is on the To of every customer article: a stranger who writes as
    # that address (any case, any +tag) must not join the ticket through it.
    flow, db = await _flow(database_settings)
    try:
        t = await _first_ticket(flow, sender=CUSTOMER)
        for n, sender in enumerate(("support@example.com", "Support <Support+x@Example.COM>")):
            await flow.deliver(_reply(t, sender=sender))
            all_tickets = await tickets(db)
            assert len(all_tickets) == 2 + n and len(await articles(db, t["id"])) == 1
            trace = (await flow.traces())[-1]
            assert trace["action"] == "new_ticket" and trace["linked_ticket"] == t["tn"]
            assert any("one of our own addresses" in r for r in trace["reasons"])
            flagged = [name for _, name in await history(db, all_tickets[-1]["id"])]
            address = sender.split("<")[-1].rstrip(">").lower()
            assert any(f"{address} is one of our own addresses" in f for f in flagged)
    finally:
        await db.close()


async def test_every_from_address_must_be_a_participant(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        t = await _first_ticket(flow, sender=CUSTOMER)
        # The customer's address last (the one pytrs takes as the sender) must not carry the
        # stranger in front of it into the ticket.
        both = "Mallory <mallory@evil.example>, Alice <alice@customer.example>"
        await flow.deliver(_reply(t, sender=both, extra={"Sender": "alice@customer.example"}))
        assert len(await tickets(db)) == 2 and len(await articles(db, t["id"])) == 1
        trace = (await flow.traces())[-1]
        assert any("mallory@evil.example is neither" in r for r in trace["reasons"])
    finally:
        await db.close()


# --- one mail, several system addresses -------------------------------------------------------


async def test_one_mail_to_two_addresses_of_one_queue_is_one_ticket(database_settings: Any) -> None:
    flow, db = await _flow(
        database_settings,
        system_addresses=[
            {"address": "support@example.com", "queue": "Support"},
            {"address": "help@example.com", "queue": "Support"},
            {"address": "sales@example.com", "queue": "Sales"},
        ],
    )
    try:
        raw = make_mail(sender=CUSTOMER, to="support@example.com, help@example.com")
        await flow.deliver(raw, "support@example.com", "help@example.com")
        [t] = await tickets(db)
        assert len(await articles(db, t["id"])) == 1
        assert await inbox_states(db) == {"done": 1, "duplicate": 1}
        rows = await flow.sql("SELECT ticket_id, article_id, raw FROM inbox_message ORDER BY id")
        assert rows[0][:2] == rows[1][:2] and rows[1][2] == raw  # the copy is kept, linked
        # Delivered in two separate batches (another worker, later): still one ticket.
        raw2 = make_mail(
            sender=CUSTOMER, subject="again", to="support@example.com, help@example.com"
        )
        await flow.deliver(raw2, "support@example.com")
        await flow.deliver(raw2, "help@example.com")
        assert len(await tickets(db)) == 2
        # A reply copied to both addresses is one follow-up, not two.
        reply = _reply(t, sender=CUSTOMER, to="support@example.com, help@example.com")
        await flow.deliver(reply, "support@example.com", "help@example.com")
        assert len(await articles(db, t["id"])) == 2
    finally:
        await db.close()


async def test_one_mail_to_two_queues_per_configuration(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        for option, expected in (("new_ticket", 2), ("same_ticket", 1)):
            config = make_config(database_settings, postmaster={"same_mail_other_queue": option})
            flow = await Flow(config, db).start()
            before = len(await tickets(db))
            raw = make_mail(sender=CUSTOMER, to="support@example.com, sales@example.com")
            await flow.deliver(raw, "support@example.com", "sales@example.com")
            assert len(await tickets(db)) - before == expected, option
    finally:
        await db.close()


async def test_same_message_id_with_other_content_is_another_mail(database_settings: Any) -> None:
    flow, db = await _flow(database_settings)
    try:
        message_id = unique_id()
        await flow.deliver(make_mail(message_id=message_id, subject="one"), "support@example.com")
        # Through another channel, so the inbox does not take it for a re-delivery.
        await flow.deliver(
            make_mail(message_id=message_id, subject="two"), "support@example.com", source="pipe"
        )
        assert len(await tickets(db)) == 2
    finally:
        await db.close()


async def test_replies_to_mail_we_sent_thread_by_its_message_id(database_settings: Any) -> None:
    """SPEC S7: In-Reply-To/References match any Message-ID pytrs stored *or sent*."""
    from pytrs.schema import outbox_repo
    from pytrs.schema.outbox_repo import OutboxMail

    flow, db = await _flow(database_settings, postmaster={"followup_check_body": False})
    try:
        t = await _first_ticket(flow, sender=CUSTOMER)
        sent_id = "<20261125.abc.pytrs@example.com>"
        async with db.transaction() as conn:
            await outbox_repo.enqueue(
                conn, OutboxMail(b"Subject: answer\r\n\r\nhi\r\n", "support@example.com",
                                 ["alice@customer.example"], sent_id),
                ticket_id=t["id"],
            )  # fmt: skip
        await flow.deliver(make_mail(sender=CUSTOMER, subject="thanks", in_reply_to=sent_id))
        assert len(await tickets(db)) == 1
        assert len(await articles(db, t["id"])) == 2
        assert (await flow.traces())[-1]["followup_via"] == "references"
    finally:
        await db.close()


def _complaint(original_id: str, complainer: str) -> bytes:
    """An ARF (RFC 5965) abuse report about one of our messages."""
    return (
        "From: fbl@mail.customer.example\r\nTo: support@example.com\r\n"
        "Subject: Abuse report\r\n"
        f"Message-ID: {unique_id('mail.customer.example')}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "\r\n--b1\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: CustomerFBL/2.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {complainer}\r\n"
        "\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nSubject: hello\r\n"
        "\r\n--b1--\r\n"
    ).encode()


@pytest.mark.parametrize("suppress", [True, False], ids=["suppressing", "not-suppressing"])
async def test_a_complaint_goes_to_its_mails_ticket_and_suppresses_the_address(
    database_settings: Any, suppress: bool
) -> None:
    flow, db = await _flow(database_settings, outbound={"suppress_on_complaint": suppress})
    try:
        t = await _first_ticket(flow, sender=CUSTOMER)
        await flow.deliver(_complaint(t["message_id"], "alice@customer.example"))
        [only] = await tickets(db)
        assert len(await articles(db, only["id"])) == 2
        trace = (await flow.traces())[-1]
        assert (trace["action"], trace["followup_via"]) == ("follow_up", "bounce")
        notes = [n for _, n in await history(db, only["id"])]
        assert any(
            n.startswith(f"%%Complaint (abuse) about {t['message_id']} by "
                         "alice@customer.example, reported by CustomerFBL/2.0 (arf)")
            for n in notes
        ), notes  # fmt: skip
        suppressed = await flow.sql("SELECT address, reason FROM address_suppression")
        if suppress:
            [(address, reason)] = suppressed
            assert address == "alice@customer.example" and "complaint (abuse)" in reason
        else:
            assert suppressed == []
    finally:
        await db.close()
