"""A ticket's articles through the API (both engines): the list and one article with its
sanitised HTML, a reply (outbox row, SendAnswer, next state, a template, the file in the
mail) and a note, and the problems of bad ones."""

from __future__ import annotations

import base64
import email
from collections.abc import Awaitable, Callable
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.config import Config
from pytrs.schema import standard_template_repo
from pytrs.schema.database import Database
from pytrs.schema.tables import outbox, queue

from ...helpers import articles, history, tickets
from ..zoom_support import PNG, SIGNATURE
from .tickets_desk import ANNA, Office, open_office


@pytest.fixture
async def office(
    config: Config,
    db: Database,
    api_app: Any,
    make_user: Callable[..., Awaitable[int]],
    make_queue: Callable[..., Awaitable[int]],
) -> Office:
    return await open_office(config, db, api_app, make_user, make_queue, support=1)


@pytest.fixture
async def anna(office: Office, make_token: Any, api_client: Any) -> Any:
    return api_client(await make_token(ANNA, scope="write"))


async def test_list_and_read_articles(anna: Any, office: Office) -> None:
    note = await anna.post(
        f"/tickets/{office.mail}/articles",
        json={"kind": "note", "body": "Called the fire brigade."},
    )
    assert note.status_code == 201, note.text
    first = await anna.get(f"/tickets/{office.mail}/articles", params={"limit": 1})
    assert first.status_code == 200, first.text
    [mail] = first.json()["items"]
    assert (mail["sender"], mail["channel"], mail["visible"]) == ("customer", "email", True)
    assert mail["from"] == "Alice Customer <alice@customer.example>"
    assert mail["subject"] == "Printer on fire" and "floor 3 is on fire" in mail["body"]
    assert mail["has_raw"] and mail["has_html"]
    names = [a["filename"] for a in mail["attachments"]]
    assert "floor plan.pdf" in names
    second = await anna.get(
        f"/tickets/{office.mail}/articles",
        params={"limit": 1, "cursor": first.json()["next_cursor"]},
    )
    [added] = second.json()["items"]
    assert added["id"] == note.json()["article_id"] and second.json()["next_cursor"] is None
    assert (added["sender"], added["channel"], added["visible"]) == ("agent", "internal", False)
    assert not added["has_raw"] and not added["has_html"]
    one = await anna.get(f"/tickets/{office.mail}/articles/{mail['id']}")
    assert one.status_code == 200
    html = one.json()["html"]
    assert "<b>floor 3</b>" in html and "cid:logo@customer.example" in html
    assert "<script" not in html and 'data-remote-src="https://images' in html
    assert one.json()["message_id"] == "<first@customer.example>"
    assert one.json()["trace"]["queue"] == "Support"
    # An article of another ticket under this one is missing.
    other = await anna.get(f"/tickets/{office.support[0]}/articles/{mail['id']}")
    assert other.status_code == 404
    bad = await anna.get(f"/tickets/{office.mail}/articles", params={"cursor": "x1"})
    assert bad.status_code == 422


async def test_reply_queues_the_mail_with_its_file(
    anna: Any, office: Office, db: Database, api_app: Any
) -> None:
    woken: list[bool] = []
    api_app.state.wake_sender = lambda: woken.append(True)
    async with db.transaction() as conn:
        support = int(await conn.scalar(select(queue.c.id).where(queue.c.name == "Support")) or 0)
        template_id = await standard_template_repo.save(
            conn,
            standard_template_repo.TemplateValues(
                name="Greeting",
                text="Thank you for your mail about {{ ticket.title }}.",
                queue_ids=frozenset({support}),
            ),
            by=1,
        )
    answer = await anna.post(
        f"/tickets/{office.mail}/articles",
        json={
            "kind": "reply",
            "body": "The fire brigade is on its way.",
            "state": "open",
            "cc": ["Boss <boss@customer.example>"],
            "template": template_id,
            "attachments": [
                {
                    "filename": "plan.txt",
                    "content_type": "text/plain",
                    "content": base64.b64encode(b"Exit left.\n").decode(),
                }
            ],
        },
    )
    assert answer.status_code == 201, answer.text
    sent = answer.json()
    assert answer.headers["location"].endswith(f"/articles/{sent['article_id']}")
    assert sent["recipients"] == ["alice@customer.example", "boss@customer.example"]
    assert woken == [True]
    ticket_id = await office.ticket_id(office.mail)
    async with db.connect() as conn:
        [row] = (await conn.execute(select(outbox).where(outbox.c.ticket_id == ticket_id))).all()
    assert row.article_id == sent["article_id"] and row.message_id == sent["message_id"]
    mail = email.message_from_bytes(row.raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    text = mail.get_body(("plain",))
    assert text is not None
    content = text.get_content().replace("\r\n", "\n")
    assert content.startswith("Thank you for your mail about Printer on fire.\n\nThe fire brig")
    assert SIGNATURE.splitlines()[0] in content and "> the printer on floor 3" in content
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == "plan.txt" and part.get_content() == "Exit left.\n"
    kinds = [kind for kind, _ in await history(db, ticket_id)]
    assert "SendAnswer" in kinds and "StateUpdate" in kinds
    assert next(t for t in await tickets(db) if t["id"] == ticket_id)["state"] == "open"
    raw = await anna.get(f"/tickets/{office.mail}/articles/{sent['article_id']}/raw")
    assert raw.status_code == 200 and b"plan.txt" in raw.content
    # Multipart: repeated fields fill the Cc list, file parts are the attachments.
    again = await anna.post(
        f"/tickets/{office.mail}/articles",
        data={
            "kind": "reply",
            "body": "Update.",
            "quote": "false",
            "cc": ["a@x.example", "b@x.example"],
        },
        files=[("attachments", ("photo.png", PNG, "image/png"))],
    )
    assert again.status_code == 201, again.text
    assert again.json()["recipients"] == ["alice@customer.example", "a@x.example", "b@x.example"]
    listed = (await anna.get(f"/tickets/{office.mail}/articles", params={"limit": 100})).json()
    last = listed["items"][-1]
    assert [(f["filename"], f["size"]) for f in last["attachments"]] == [("photo.png", len(PNG))]
    assert "> the printer" not in last["body"]
    assert woken == [True, True]


async def test_note_and_refused_articles(
    anna: Any, office: Office, db: Database, make_token: Any, api_client: Any
) -> None:
    tn = office.support[0]
    ticket_id = await office.ticket_id(tn)
    note = await anna.post(
        f"/tickets/{tn}/articles", json={"kind": "note", "body": "Checked.", "subject": "Check"}
    )
    assert note.status_code == 201, note.text
    assert note.json()["message_id"] is None and note.json()["recipients"] == []
    stored = (await articles(db, ticket_id))[-1]
    assert (stored["a_subject"], stored["a_body"]) == ("Check", "Checked.")
    assert ("AddNote", "%%Note") in await history(db, ticket_id)
    empty = await anna.post(f"/tickets/{tn}/articles", json={"kind": "note", "body": " "})
    assert empty.status_code == 422 and empty.json()["type"].endswith("#invalid-change")
    cc_note = await anna.post(
        f"/tickets/{tn}/articles", json={"kind": "note", "body": "x", "cc": ["a@b.example"]}
    )
    assert cc_note.status_code == 422
    kind = await anna.post(f"/tickets/{tn}/articles", json={"kind": "email", "body": "x"})
    assert kind.status_code == 422 and kind.json()["errors"][0]["field"] == "kind"
    template = await anna.post(
        f"/tickets/{tn}/articles", json={"kind": "reply", "body": "x", "template": 999}
    )
    assert template.status_code == 422 and template.json()["type"].endswith("#unknown-name")
    state = await anna.post(
        f"/tickets/{tn}/articles", json={"kind": "reply", "body": "x", "state": "gone"}
    )
    assert state.status_code == 422
    read_only = await anna.post(
        f"/tickets/{office.gamma[0]}/articles", json={"kind": "note", "body": "x"}
    )
    assert read_only.status_code == 403
    reader = api_client(await make_token(ANNA, scope="read"))
    refused = await reader.post(f"/tickets/{tn}/articles", json={"kind": "note", "body": "x"})
    assert refused.status_code == 403
    assert len(await articles(db, ticket_id)) == 2
    async with db.connect() as conn:
        assert (await conn.execute(select(outbox))).first() is None
