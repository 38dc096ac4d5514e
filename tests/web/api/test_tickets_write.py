"""Changing tickets through the API (both engines): create (JSON and multipart, with files),
the Idempotency-Key (a retry and two requests at once make one ticket), each field of a
change with its history, merge and links, and the problems a client gets for bad input."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert, select

from pytrs.config import Config
from pytrs.schema.database import Database
from pytrs.schema.tables import TicketType, article_data_mime_attachment, ticket
from pytrs.tickets import Actor

from ...helpers import add_sla, articles, count, history, tickets
from .tickets_desk import ANNA, BOB, BOSS, Office, open_office

NEW = {
    "title": "Printer jammed",
    "queue": "Support",
    "customer_user": "carol@customer.example",
    "body": "Carol called: the printer is jammed.",
    "priority": "4 high",
}


@pytest.fixture
async def office(
    config: Config,
    db: Database,
    api_app: Any,
    make_user: Callable[..., Awaitable[int]],
    make_queue: Callable[..., Awaitable[int]],
) -> Office:
    return await open_office(config, db, api_app, make_user, make_queue)


@pytest.fixture
async def anna(office: Office, make_token: Any, api_client: Any) -> Any:
    return api_client(await make_token(ANNA, scope="write"))


async def test_create_stores_ticket_article_history_and_files(
    anna: Any, db: Database, office: Office
) -> None:
    pdf = b"%PDF-1.4 jam report"
    body = {
        **NEW,
        "attachments": [
            {
                "filename": "../jam report.pdf",
                "content_type": "application/pdf",
                "content": base64.b64encode(pdf).decode(),
            }
        ],
    }
    answer = await anna.post("/tickets", json=body)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert answer.headers["location"] == f"/api/v1/tickets/{made['tn']}"
    row = next(t for t in await tickets(db) if t["tn"] == made["tn"])
    assert (row["id"], row["queue"], row["state"]) == (made["id"], "Support", "new")
    assert row["customer_user_id"] == "carol@customer.example"
    [first] = await articles(db, made["id"])
    assert first["id"] == made["article_id"] and first["a_subject"] == "Printer jammed"
    assert first["a_from"] == "carol@customer.example" and first["is_visible_for_customer"]
    assert [kind for kind, _ in await history(db, made["id"])][:2] == ["NewTicket", "EmailCustomer"]
    async with db.connect() as conn:
        stored = (
            await conn.execute(
                select(article_data_mime_attachment).where(
                    article_data_mime_attachment.c.article_id == made["article_id"]
                )
            )
        ).one()
    assert (stored.filename, stored.content_type, bytes(stored.content)) == (
        "jam report.pdf",
        "application/pdf",
        pdf,
    )
    got = (await anna.get(f"/tickets/{made['tn']}")).json()
    assert (got["priority"], got["owner"], got["articles"]) == ("4 high", ANNA, 1)
    # Multipart: the fields fill the same body, the files come as parts; an agent article.
    answer = await anna.post(
        "/tickets",
        data={**NEW, "sender": "agent", "channel": "internal", "visible": "false"},
        files=[("attachments", ("log.txt", b"line 1\n", "text/plain"))],
    )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    [first] = await articles(db, made["id"])
    assert first["a_from"] == "Anna Agent <anna@example.com>"
    assert not first["is_visible_for_customer"]
    files = (await anna.get(f"/tickets/{made['tn']}/articles")).json()["items"][0]["attachments"]
    assert [(f["filename"], f["size"]) for f in files] == [("log.txt", 7)]


async def test_create_refuses_with_problems(
    anna: Any, office: Office, db: Database, make_token: Any, api_client: Any
) -> None:
    before = await count(db, ticket)
    missing = await anna.post("/tickets", json={"title": "x", "queue": "Support"})
    assert missing.status_code == 422 and missing.json()["type"].endswith("#validation-failed")
    assert [e["field"] for e in missing.json()["errors"]] == ["body"]
    unknown_field = await anna.post("/tickets", json={**NEW, "colour": "red"})
    assert unknown_field.json()["errors"][0]["field"] == "colour"
    not_base64 = await anna.post(
        "/tickets", json={**NEW, "attachments": [{"filename": "a.bin", "content": "***"}]}
    )
    assert not_base64.status_code == 422
    assert not_base64.json()["errors"][0]["field"] == "attachments.0.content"
    # Queues the agent may not write (Sales: not even read; Gamma: read only) are unknown.
    for queue in ("Sales", "Gamma", "Nowhere"):
        answer = await anna.post("/tickets", json={**NEW, "queue": queue})
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"].endswith("#unknown-name")
        assert "'Sales'" not in answer.json()["detail"].replace(f"'{queue}'", "")
    bad_state = await anna.post("/tickets", json={**NEW, "state": "merged"})
    assert bad_state.status_code == 422
    owner = await anna.post("/tickets", json={**NEW, "owner": BOB})
    assert owner.status_code == 422 and owner.json()["type"].endswith("#invalid-change")
    reader = api_client(await make_token(ANNA, scope="read"))
    assert (await reader.post("/tickets", json=NEW)).status_code == 403
    assert await count(db, ticket) == before


async def test_a_retried_create_makes_one_ticket(
    anna: Any, db: Database, office: Office, make_token: Any, api_client: Any
) -> None:
    before = await count(db, ticket)
    first = await anna.post("/tickets", json=NEW, headers={"Idempotency-Key": "k-1"})
    again = await anna.post("/tickets", json=NEW, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    # The replay names the ticket the first request made, as the first answer did.
    assert first.headers["location"] == f"/api/v1/tickets/{first.json()['tn']}"
    assert again.headers["location"] == first.headers["location"]
    other = await anna.post(
        "/tickets", json={**NEW, "title": "Other"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("#idempotency-key-reused")
    assert await count(db, ticket) == before + 1
    # Two requests with one key at the same time: one ticket, the same answer to both.
    second = api_client(await make_token(ANNA, scope="write"))
    both = await asyncio.gather(
        anna.post("/tickets", json=NEW, headers={"Idempotency-Key": "k-2"}),
        second.post("/tickets", json=NEW, headers={"Idempotency-Key": "k-2"}),
    )
    assert [b.status_code for b in both] == [201, 201], [b.text for b in both]
    assert both[0].json() == both[1].json()
    assert await count(db, ticket) == before + 2


async def test_update_changes_each_field_with_history(
    anna: Any, db: Database, office: Office, make_user: Any
) -> None:
    await make_user("carl", queues={"Billing": "rw", "Support": "rw"})
    async with db.transaction() as conn:
        await conn.execute(
            insert(cast(Table, TicketType.__table__)).values(name="Incident", valid_id=1)
        )
    tn = office.support[0]
    ticket_id = await office.ticket_id(tn)
    change = {
        "state": "open",
        "priority": "5 very high",
        "queue": "Billing",
        "owner": "carl",
        "responsible": ANNA,
        "lock": "lock",
        "title": "Printer on fire again",
        "type": "Incident",
        "customer_user": "dave@customer.example",
        "customer_id": "customer.example",
    }
    answer = await anna.patch(f"/tickets/{tn}", json=change)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    changed = {c["field"]: c["new"] for c in result["changed"]}
    assert changed["state"] == "open" and changed["queue"] == "Billing"
    assert changed["owner"] == "carl" and changed["title"] == "Printer on fire again"
    shown = result["ticket"]
    for name, value in change.items():
        assert shown[name] == value, name
    kinds = {kind for kind, _ in await history(db, ticket_id)}
    assert kinds >= {
        "StateUpdate",
        "PriorityUpdate",
        "Move",
        "OwnerUpdate",
        "ResponsibleUpdate",
        "Lock",
        "TitleUpdate",
        "TypeUpdate",
        "CustomerUpdate",
    }
    nothing = await anna.patch(f"/tickets/{tn}", json={"state": "open"})
    assert nothing.status_code == 200 and nothing.json()["changed"] == []
    # A queue the agent may not write, an owner who may not work there, a read-only ticket.
    to_sales = await anna.patch(f"/tickets/{tn}", json={"queue": "Sales"})
    assert to_sales.status_code == 422 and to_sales.json()["type"].endswith("#unknown-name")
    bob_owner = await anna.patch(f"/tickets/{tn}", json={"owner": BOB})
    assert bob_owner.json()["type"].endswith("#invalid-change")
    read_only = await anna.patch(f"/tickets/{office.gamma[0]}", json={"title": "x"})
    assert read_only.status_code == 403 and read_only.json()["type"].endswith("#forbidden")
    wrong = await anna.patch(f"/tickets/{tn}", json={"lock": "maybe"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "lock"
    assert (await anna.patch(f"/tickets/{tn}", json={"state": "merged"})).status_code == 422


async def test_update_pending_time_and_sla(anna: Any, db: Database, office: Office) -> None:
    await add_sla(db, "Gold")
    tn = office.support[0]
    ticket_id = await office.ticket_id(tn)
    pending = {
        "state": "pending reminder",
        "pending_until": "2099-01-04T10:00:00+01:00",
        "sla": "Gold",
    }
    answer = await anna.patch(f"/tickets/{tn}", json=pending)
    assert answer.status_code == 200, answer.text
    shown = answer.json()["ticket"]
    assert (shown["state"], shown["sla"]) == ("pending reminder", "Gold")
    assert shown["pending_until"] == "2099-01-04T09:00:00Z"
    kinds = {kind for kind, _ in await history(db, ticket_id)}
    assert kinds >= {"StateUpdate", "SetPendingTime", "SLAUpdate"}
    cleared = await anna.patch(f"/tickets/{tn}", json={"sla": "", "state": "open"})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["ticket"]["sla"] is None
    assert cleared.json()["ticket"]["pending_until"] is None
    # A time in the past, one without a zone, a pending state without a time, an unknown SLA.
    past = await anna.patch(f"/tickets/{tn}", json={"pending_until": "2020-01-01T00:00:00Z"})
    assert past.status_code == 422 and past.json()["type"].endswith("#invalid-change")
    naive = await anna.patch(f"/tickets/{tn}", json={"pending_until": "2099-01-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "pending_until"
    no_time = await anna.patch(f"/tickets/{tn}", json={"state": "pending reminder"})
    assert no_time.status_code == 422 and no_time.json()["type"].endswith("#invalid-change")
    unknown = await anna.patch(f"/tickets/{tn}", json={"sla": "Platinum"})
    assert unknown.status_code == 422 and unknown.json()["type"].endswith("#unknown-name")


async def test_merge_and_links(
    anna: Any, db: Database, office: Office, make_token: Any, api_client: Any
) -> None:
    boss = api_client(await make_token(BOSS, scope="read"))
    source, target = office.support[1], office.support[2]
    source_id, target_id = await office.ticket_id(source), await office.ticket_id(target)
    link = await anna.post(f"/tickets/{office.support[0]}/links", json={"other": target})
    assert link.status_code == 200, link.text
    assert link.json()["created"] is True
    assert link.json()["links"] == [{"tn": target, "kind": "Normal", "role": "normal"}]
    again = await anna.post(f"/tickets/{office.support[0]}/links", json={"other": target})
    assert again.json()["created"] is False
    hidden = await anna.post(f"/tickets/{office.support[0]}/links", json={"other": office.sales[0]})
    missing = await anna.post(f"/tickets/{office.support[0]}/links", json={"other": "123"})
    assert hidden.status_code == missing.status_code == 422
    assert hidden.json()["detail"].replace(office.sales[0], "?") == missing.json()[
        "detail"
    ].replace("123", "?")
    # Merge: a target out of sight is missing (the path's ticket is there: not a 404); one
    # read only is forbidden.
    for into, status in ((office.sales[0], 422), ("123", 422), (office.gamma[0], 403)):
        answer = await anna.post(f"/tickets/{source}/merge", json={"into": into})
        assert answer.status_code == status, answer.text
    answer = await anna.post(f"/tickets/{source}/merge", json={"into": target})
    assert answer.status_code == 200, answer.text
    merged = answer.json()
    assert merged["into"] == target and merged["ticket"]["state"] == "merged"
    assert merged["ticket"]["merged_into"] == target
    moved = await articles(db, target_id)
    assert len(moved) == 2 and len(await articles(db, source_id)) == 1  # the merge note
    assert "Merged" in {kind for kind, _ in await history(db, source_id)}
    parent = (await anna.get(f"/tickets/{target}")).json()["links"]
    assert {"tn": source, "kind": "ParentChild", "role": "child"} in parent
    twice = await anna.post(f"/tickets/{source}/merge", json={"into": target})
    assert twice.status_code == 409 and twice.json()["type"].endswith("#ticket-merged")
    # Links and a merge made by someone who sees both queues do not show the hidden ticket.
    service, hidden_id = office.tickets.service, await office.ticket_id(office.sales[0])
    first_id = await office.ticket_id(office.support[0])
    async with db.transaction() as conn:
        await service.link(conn, target_id, hidden_id, actor=Actor.SYSTEM)
        await service.merge(conn, first_id, into=hidden_id, actor=Actor.SYSTEM)
    shown = (await anna.get(f"/tickets/{target}")).json()
    assert office.sales[0] not in str(shown)
    assert office.sales[0] in str((await boss.get(f"/tickets/{target}")).json()["links"])
    gone = (await anna.get(f"/tickets/{office.support[0]}")).json()
    assert gone["state"] == "merged" and gone["merged_into"] is None
    assert office.sales[0] not in str(gone)
    for tn in (target, office.support[0]):
        trail = (await anna.get(f"/tickets/{tn}/history")).json()["entries"]
        assert office.sales[0] not in str(trail) and str(hidden_id) not in str(
            [e["parameters"] for e in trail if e["type"] in ("Merged", "TicketLinkAdd")]
        )
        assert "(hidden)" in str(trail)
    boss_trail = (await boss.get(f"/tickets/{target}/history")).json()["entries"]
    assert office.sales[0] in str(boss_trail)
