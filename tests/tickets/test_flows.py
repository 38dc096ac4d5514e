"""The ticket service with the rest of pytrs: a merged ticket's old number still reaches the
target by mail, and an agent's reply leaves through the outbox sender, signed, to the relay."""

from __future__ import annotations

import dataclasses
import email
import json
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import dkim
from sqlalchemy import select, text

from pytrs.config import DkimKeyConfig
from pytrs.outbound.dkim import DkimSigner
from pytrs.outbound.sender import OutboxSender
from pytrs.schema.tables import link_relation
from pytrs.tickets import Actor, TicketUpdate

from ..helpers import articles, history, make_mail, tickets
from ..servers.relay import RecordingRelay, write_rsa_key
from .conftest import CUSTOMER, Desk, open_desk


async def test_mail_to_a_merged_ticket_lands_on_its_target(desk: Desk) -> None:
    await desk.deliver(make_mail(sender=CUSTOMER, subject="Printer on fire"))
    await desk.deliver(make_mail(sender=CUSTOMER, subject="Printer still on fire"))
    old, target = await tickets(desk.db)
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        await desk.service.merge(conn, old["id"], into=target["id"], actor=jdoe)
    await desk.deliver(make_mail(sender=CUSTOMER, subject=f"Re: [Ticket#{old['tn']}] hello"))
    assert len(await tickets(desk.db)) == 2  # no new ticket
    assert [a["a_subject"] for a in await articles(desk.db, target["id"])] == [
        "Printer on fire", "Printer still on fire", f"Re: [Ticket#{old['tn']}] hello",
    ]  # fmt: skip
    assert [a["a_subject"] for a in await articles(desk.db, old["id"])] == ["Ticket Merged"]
    assert ("FollowUp", f"%%{target['tn']}") == (await history(desk.db, target["id"]))[-1]
    async with desk.db.connect() as conn:
        trace = json.loads((await conn.execute(text(
            "SELECT trace FROM inbox_message ORDER BY id DESC"
        ))).scalars().first())  # fmt: skip
    assert trace["ticket"] == target["tn"] and "merged" in " ".join(trace["reasons"])


async def test_reply_goes_out_signed_through_the_relay(
    database_settings: dict[str, Any], relay: RecordingRelay, tmp_path: Path
) -> None:
    key = write_rsa_key(tmp_path / "dkim.pem")
    desk = await open_desk(
        database_settings,
        outbound={"relay": relay.address, "loop_secret": "0123456789abcdef-loop-secret-for-tests",
                  "timeout_seconds": 5.0, "helo_name": "pytrs.test"},
    )  # fmt: skip
    try:
        await desk.deliver(make_mail(sender=CUSTOMER, subject="Printer on fire",
                                     body="It smells of toner.\nPlease hurry.\n"))  # fmt: skip
        [ticket] = await tickets(desk.db)
        [first] = await articles(desk.db, ticket["id"])
        jdoe = await desk.agent()
        async with desk.db.transaction() as conn:
            reply = await desk.service.reply(
                conn, ticket["id"], actor=jdoe, body="A technician is on the way.",
                cc=["Boss <boss@customer.example>", "sales@example.com"], state="open",
            )  # fmt: skip
        config = dataclasses.replace(
            desk.config, dkim_keys=(DkimKeyConfig("example.com", "s1", str(key)),)
        )
        signer = DkimSigner.from_config(config.dkim_keys)
        sender = OutboxSender(config, desk.db, signer)
        try:
            await sender.run_once()
        finally:
            await sender.close()
        [got] = relay.received
        assert set(got.rcpt_tos) == {"alice@customer.example", "boss@customer.example"}
        assert got.data.startswith(b"DKIM-Signature: ")
        signing = signer.keys["example.com"]
        assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: signing.dns_record().encode())
        msg = email.message_from_bytes(got.data, policy=default_policy)
        assert msg["Subject"] == f"Re: [Ticket#{ticket['tn']}] Printer on fire"
        assert msg["Message-ID"] == reply.message_id
        assert msg["In-Reply-To"] == first["a_message_id"]
        assert first["a_message_id"] in msg["References"]
        assert msg["Cc"] == "Boss <boss@customer.example>"
        assert msg["From"].addresses[0].addr_spec == "support@example.com"
        assert "Auto-Submitted" not in msg
        body = msg.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]
        assert body.startswith("A technician is on the way.\n")
        assert "> It smells of toner.\n> Please hurry." in body
        assert (await tickets(desk.db))[0]["state"] == "open"
    finally:
        await desk.db.close()


async def test_follow_up_opened_as_a_new_ticket_is_linked(desk: Desk) -> None:
    """Queue Sales opens a new ticket for mail to a closed ticket: both are linked, in
    `link_relation` and in their history."""
    await desk.deliver(make_mail(sender=CUSTOMER, subject="Quote"), "sales@example.com")
    [closed] = await tickets(desk.db)
    async with desk.db.transaction() as conn:
        await desk.service.update(conn, closed["id"], TicketUpdate(state="closed successful"),
                                  actor=Actor.SYSTEM)  # fmt: skip
    await desk.deliver(make_mail(sender=CUSTOMER, subject=f"Re: [Ticket#{closed['tn']}] Quote"),
                       "sales@example.com")  # fmt: skip
    _, new = await tickets(desk.db)
    async with desk.db.connect() as conn:
        [link] = (await conn.execute(select(link_relation))).all()
    assert {link.source_key, link.target_key} == {str(closed["id"]), str(new["id"])}
    assert link.type_id == 1
    assert ("TicketLinkAdd", f"%%{closed['tn']}%%{closed['id']}%%Normal") in await history(
        desk.db, new["id"]
    )
    assert ("TicketLinkAdd", f"%%{new['tn']}%%{new['id']}%%Normal") in await history(
        desk.db, closed["id"]
    )
