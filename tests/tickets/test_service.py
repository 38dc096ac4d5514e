"""The ticket service's operations and invariants on a real database (both engines)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from pytrs.schema.tables import link_relation, outbox
from pytrs.tickets import (
    Actor,
    ArticleInput,
    InvalidChange,
    TicketError,
    TicketMerged,
    TicketNotFound,
    TicketUpdate,
    UnknownName,
)

from ..helpers import articles, history, tickets
from .conftest import Desk, open_desk


async def test_find_and_agent(desk: Desk) -> None:
    ticket_id, tn = await desk.ticket()
    async with desk.db.connect() as conn:
        found = await desk.service.find(conn, tn)
        assert (found.id, found.tn, found.queue, found.state, found.state_type) == (
            ticket_id, tn, "Support", "new", "new",
        )  # fmt: skip
        assert found.customer_user == "alice@customer.example" and found.owner == "root@localhost"
        with pytest.raises(TicketNotFound, match="no ticket with number '999'"):
            await desk.service.find(conn, "999")
        agent = await desk.service.agent(conn, "jdoe")
        assert (agent.login, agent.email) == ("jdoe", "jdoe@agents.example")
        with pytest.raises(TicketError, match="no valid agent 'nobody'"):
            await desk.service.agent(conn, "nobody")


async def test_create_writes_ticket_article_and_history(desk: Desk) -> None:
    ticket_id, tn = await desk.ticket()
    [t] = await tickets(desk.db)
    assert (t["id"], t["tn"], t["title"], t["state"], t["queue"]) == (
        ticket_id, tn, "Printer on fire", "new", "Support",
    )  # fmt: skip
    [a] = await articles(desk.db, ticket_id)
    assert (a["article_sender_type_id"], a["is_visible_for_customer"], a["a_subject"]) == (
        3, 1, "Printer on fire",
    )  # fmt: skip
    assert await history(desk.db, ticket_id) == [
        ("NewTicket", f"%%{tn}%%Support%%3 normal%%new%%{ticket_id}"),
        ("EmailCustomer", "%%"),
    ]


async def test_update_changes_fields_and_writes_history(desk: Desk) -> None:
    ticket_id, _tn = await desk.ticket()
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        changes = await desk.service.update(
            conn, ticket_id,
            TicketUpdate(state="open", priority="4 high", queue="Sales", owner="jdoe",
                         responsible="asmith", lock="lock", title="Printer still on fire",
                         customer_user="bob@customer.example", customer_id="ACME"),
            actor=jdoe,
        )  # fmt: skip
    assert [c.field for c in changes.fields] == [
        "owner", "responsible", "lock", "state", "priority", "queue", "title", "customer",
    ]  # fmt: skip
    [t] = await tickets(desk.db)
    assert (t["state"], t["ticket_priority_id"], t["queue"], t["ticket_lock_id"]) == (
        "open", 4, "Sales", 2,
    )  # fmt: skip
    assert (t["title"], t["customer_user_id"], t["customer_id"]) == (
        "Printer still on fire", "bob@customer.example", "ACME",
    )  # fmt: skip
    assert t["change_by"] == jdoe.user_id
    kinds = [k for k, _ in (await history(desk.db, ticket_id))[2:]]
    assert kinds == [
        "OwnerUpdate", "ResponsibleUpdate", "Lock", "StateUpdate", "PriorityUpdate", "Move",
        "TitleUpdate", "CustomerUpdate",
    ]  # fmt: skip
    names = dict((await history(desk.db, ticket_id))[2:])
    assert names["OwnerUpdate"] == f"%%jdoe%%{jdoe.user_id}"
    assert names["StateUpdate"] == "%%new%%open%%"
    assert names["CustomerUpdate"] == "%%CustomerID=ACME;CustomerUser=bob@customer.example;"
    # The history rows record the ticket as each step left it.
    async with desk.db.connect() as conn:
        last = (await conn.execute(text(
            "SELECT queue_id, state_id, owner_id, priority_id FROM ticket_history "
            "WHERE ticket_id = :t ORDER BY id DESC"
        ), {"t": ticket_id})).first()  # fmt: skip
    assert tuple(last) == (t["queue_id"], 4, jdoe.user_id, 4)
    # Asking for what the ticket already has changes nothing and writes nothing.
    async with desk.db.transaction() as conn:
        again = await desk.service.update(
            conn, ticket_id, TicketUpdate(state="open", queue="Sales"), actor=jdoe
        )
    assert not again and len(await history(desk.db, ticket_id)) == 10


@pytest.mark.parametrize(
    ("update", "error", "message"),
    [
        (TicketUpdate(state="opened"), UnknownName, "no valid state 'opened'"),
        (TicketUpdate(priority="urgent"), UnknownName, "no valid priority 'urgent'"),
        (TicketUpdate(queue="Nowhere"), UnknownName, "no valid queue 'Nowhere'"),
        (TicketUpdate(type="Incident"), UnknownName, "no valid type 'Incident'"),
        (TicketUpdate(owner="nobody"), UnknownName, "no valid agent 'nobody'"),
        (TicketUpdate(lock="maybe"), UnknownName, "no valid lock 'maybe'"),
        (TicketUpdate(state="merged"), InvalidChange, "set by merging"),
        (TicketUpdate(title="  "), InvalidChange, "title cannot be empty"),
        (TicketUpdate(state="closed successful", lock="lock"), InvalidChange,
         "closed ticket cannot be locked"),
    ],
)  # fmt: skip
async def test_update_refuses_invalid_changes(
    desk: Desk, update: TicketUpdate, error: type[Exception], message: str
) -> None:
    ticket_id, _tn = await desk.ticket()
    with pytest.raises(error, match=message) as raised:
        async with desk.db.transaction() as conn:
            await desk.service.update(conn, ticket_id, update, actor=Actor.SYSTEM)
    assert "\n" not in str(raised.value)
    assert len(await history(desk.db, ticket_id)) == 2  # nothing written


async def test_closed_ticket_cannot_be_locked(desk: Desk) -> None:
    ticket_id, _tn = await desk.ticket()
    async with desk.db.transaction() as conn:
        await desk.service.update(conn, ticket_id, TicketUpdate(state="closed successful"),
                                  actor=Actor.SYSTEM)  # fmt: skip
    with pytest.raises(InvalidChange, match="closed successful: a closed ticket cannot be locked"):
        async with desk.db.transaction() as conn:
            await desk.service.update(conn, ticket_id, TicketUpdate(lock="lock"),
                                      actor=Actor.SYSTEM)  # fmt: skip
    # Reopening and locking in one change is fine.
    async with desk.db.transaction() as conn:
        done = await desk.service.update(conn, ticket_id, TicketUpdate(state="open", lock="lock"),
                                         actor=Actor.SYSTEM)  # fmt: skip
    assert done.changed("lock") and done.ticket.lock == "lock"


async def test_note_is_internal(desk: Desk) -> None:
    ticket_id, _tn = await desk.ticket()
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        article_id = await desk.service.note(conn, ticket_id, actor=jdoe, body="Called her.")
    last = (await articles(desk.db, ticket_id))[-1]
    assert last["id"] == article_id
    assert (last["article_sender_type_id"], last["is_visible_for_customer"]) == (1, 0)
    assert last["communication_channel_id"] == 3 and last["a_body"] == "Called her."
    assert last["a_from"] == "jdoe <jdoe@agents.example>"
    assert (await history(desk.db, ticket_id))[-1] == ("AddNote", "%%Note")
    with pytest.raises(InvalidChange, match="needs a text"):
        async with desk.db.transaction() as conn:
            await desk.service.note(conn, ticket_id, actor=jdoe, body=" ")


async def test_add_article_with_attachments(desk: Desk) -> None:
    from pytrs.tickets import ArticleAttachment

    ticket_id, tn = await desk.ticket()
    content = ArticleInput(
        sender="customer", from_="alice@customer.example", subject="more", body="see log",
        raw=b"raw bytes", attachments=[ArticleAttachment("log.txt", "text/plain", b"boom"),
                                       ArticleAttachment("log.txt", "text/plain", b"bang")],
    )  # fmt: skip
    async with desk.db.transaction() as conn:
        article_id = await desk.service.add_article(conn, ticket_id, content, actor=Actor.SYSTEM)
    async with desk.db.connect() as conn:
        names = (await conn.execute(text(
            "SELECT filename FROM article_data_mime_attachment WHERE article_id = :a ORDER BY id"
        ), {"a": article_id})).scalars().all()  # fmt: skip
        raw = (await conn.execute(text(
            "SELECT body FROM article_data_mime_plain WHERE article_id = :a"
        ), {"a": article_id})).scalar_one()  # fmt: skip
    assert list(names) == ["log.txt", "log-1.txt"] and bytes(raw) == b"raw bytes"
    assert (await history(desk.db, ticket_id))[-1] == ("FollowUp", f"%%{tn}")


async def test_merge(desk: Desk) -> None:
    source_id, source_tn = await desk.ticket("First")
    target_id, target_tn = await desk.ticket("Second")
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        await desk.service.update(conn, source_id, TicketUpdate(lock="lock"), actor=jdoe)
        changes = await desk.service.merge(conn, source_id, into=target_id, actor=jdoe)
    assert changes.ticket.state == "merged" and changes.ticket.lock == "unlock"
    moved = await articles(desk.db, target_id)
    assert [a["a_subject"] for a in moved] == ["First", "Second"]
    [note] = await articles(desk.db, source_id)
    assert note["a_body"] == f"Merged Ticket {source_tn} to {target_tn}."
    assert note["article_sender_type_id"] == 1
    merged = f"%%{source_tn}%%{source_id}%%{target_tn}%%{target_id}"
    source_history = await history(desk.db, source_id)
    assert ("Merged", merged) in source_history and ("Merged", merged) in await history(
        desk.db, target_id
    )
    assert ("StateUpdate", "%%new%%merged%%") in source_history
    assert ("Unlock", "%%unlock") in source_history
    assert ("TicketLinkAdd", f"%%{target_tn}%%{target_id}%%ParentChild") in source_history
    async with desk.db.connect() as conn:
        link = (await conn.execute(select(link_relation))).one()
    assert (link.source_key, link.target_key, link.type_id) == (str(target_id), str(source_id), 2)
    # A merged ticket takes nothing more.
    attempts = (
        lambda c: desk.service.update(c, source_id, TicketUpdate(priority="4 high"), actor=jdoe),
        lambda c: desk.service.note(c, source_id, actor=jdoe, body="hello"),
        lambda c: desk.service.reply(c, source_id, actor=jdoe, body="hello"),
    )
    for attempt in attempts:
        with pytest.raises(TicketMerged, match=f"ticket {source_tn} was merged"):
            async with desk.db.transaction() as conn:
                await attempt(conn)
    third_id, _ = await desk.ticket("Third")
    with pytest.raises(TicketMerged, match="merge into that one"):
        async with desk.db.transaction() as conn:
            await desk.service.merge(conn, third_id, into=source_id, actor=jdoe)
    with pytest.raises(InvalidChange, match="into itself"):
        async with desk.db.transaction() as conn:
            await desk.service.merge(conn, third_id, into=third_id, actor=jdoe)


async def test_link(desk: Desk) -> None:
    a_id, a_tn = await desk.ticket("A")
    b_id, b_tn = await desk.ticket("B")
    async with desk.db.transaction() as conn:
        assert await desk.service.link(conn, a_id, b_id, actor=Actor.SYSTEM)
        assert not await desk.service.link(conn, b_id, a_id, actor=Actor.SYSTEM)
    assert (await history(desk.db, a_id))[-1] == ("TicketLinkAdd", f"%%{b_tn}%%{b_id}%%Normal")
    assert (await history(desk.db, b_id))[-1] == ("TicketLinkAdd", f"%%{a_tn}%%{a_id}%%Normal")
    with pytest.raises(UnknownName, match="no valid link type 'Sibling'"):
        async with desk.db.transaction() as conn:
            await desk.service.link(conn, a_id, b_id, actor=Actor.SYSTEM, kind="Sibling")


async def test_reply_queues_an_answer(desk: Desk) -> None:
    ticket_id, tn = await desk.ticket()
    jdoe = await desk.agent()
    async with desk.db.transaction() as conn:
        reply = await desk.service.reply(
            conn, ticket_id, actor=jdoe, body="We sent a technician.",
            cc=["boss@customer.example", "support@example.com"], state="pending reminder",
            pending_until=1_900_000_000,
        )  # fmt: skip
    assert reply.recipients == ("alice@customer.example", "boss@customer.example")
    last = (await articles(desk.db, ticket_id))[-1]
    assert last["id"] == reply.article_id and last["a_message_id"] == reply.message_id
    assert (last["article_sender_type_id"], last["is_visible_for_customer"]) == (1, 1)
    assert f"[Ticket#{tn}]" in last["a_subject"]
    async with desk.db.connect() as conn:
        row = (await conn.execute(select(outbox))).one()
    assert (row.kind, row.ticket_id, row.article_id) == ("answer", ticket_id, reply.article_id)
    assert b"> Hello, the printer is on fire." in row.raw
    kinds = await history(desk.db, ticket_id)
    assert kinds[-3:] == [
        ("SendAnswer", "%%alice@customer.example, boss@customer.example"),
        ("StateUpdate", "%%new%%pending reminder%%"),
        ("SetPendingTime", "%%2030-03-17 17:46:40"),
    ]


async def test_reply_needs_one_customer_address_and_a_system_address(
    database_settings: Any, desk: Desk
) -> None:
    jdoe = await desk.agent()
    ticket_id, _tn = await desk.ticket(customer_user="alice@a.example, bob@b.example")
    with pytest.raises(InvalidChange, match="is not one e-mail address"):
        async with desk.db.transaction() as conn:
            await desk.service.reply(conn, ticket_id, actor=jdoe, body="hi")
    with pytest.raises(UnknownName, match="no valid state 'gone'"):
        async with desk.db.transaction() as conn:
            await desk.service.reply(conn, ticket_id, actor=jdoe, body="hi", state="gone")
    async with desk.db.connect() as conn:
        assert (await conn.execute(select(outbox))).first() is None
    silent = await open_desk(database_settings, system_addresses=[])
    try:
        ticket_id, _tn = await silent.ticket()
        with pytest.raises(InvalidChange, match="queue Support has no system address"):
            async with silent.db.transaction() as conn:
                await silent.service.reply(conn, ticket_id, actor=jdoe, body="hi")
    finally:
        await silent.db.close()


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"queue": "Nowhere"}, UnknownName, "no valid queue 'Nowhere'"),
        ({"title": " "}, InvalidChange, "title cannot be empty"),
        ({"state": "merged"}, InvalidChange, "cannot start merged"),
        ({"owner": "nobody"}, UnknownName, "no valid agent 'nobody'"),
        ({"state": "closed successful", "lock": "lock"}, InvalidChange, "cannot be locked"),
    ],
)
async def test_create_refuses_invalid_tickets(
    desk: Desk, changes: dict[str, str], error: type[Exception], message: str
) -> None:
    from pytrs.tickets import NewTicket

    new = NewTicket(**{"title": "Printer", "queue": "Support", **changes})
    with pytest.raises(error, match=message):
        async with desk.db.transaction() as conn:
            await desk.service.create(conn, new, actor=Actor.SYSTEM)
    assert await tickets(desk.db) == []


def test_responders_do_not_import_the_ticket_service() -> None:
    """The service composes with `responders`; the reverse would be an import circle."""
    import ast
    from pathlib import Path

    import pytrs.responders

    for path in Path(pytrs.responders.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("pytrs.tickets"), path.name
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("pytrs.tickets") for a in node.names), path.name
