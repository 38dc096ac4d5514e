"""The answer templates' admin page and their use in a reply (both engines)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.config import Config
from pytrs.schema import standard_template_repo as repo
from pytrs.schema.database import Database
from pytrs.schema.tables import queue

from ..zoom_support import (
    Roles,
    deliver,
    newest_ticket,
    realistic_mail,
)

Login = Callable[..., Awaitable[Any]]
GREETING = "Dear {{ customer.full_name }},\n\nthank you for your mail about {{ ticket.title }}."


async def queue_ids(db: Database) -> dict[str, int]:
    async with db.connect() as conn:
        return {r.name: int(r.id) for r in await conn.execute(select(queue.c.name, queue.c.id))}


async def saved(db: Database) -> list[repo.StandardTemplate]:
    async with db.connect() as conn:
        return await repo.list_templates(conn)


async def test_create_edit_assign_delete(login: Login, roles: Roles, db: Database) -> None:
    ids = await queue_ids(db)
    admin = await login(roles.admin)
    assert (await admin.get("/admin/templates/new")).status_code == 200
    answer = await admin.post_form(
        "/admin/templates/new",
        {
            "name": "Greeting",
            "text": GREETING,
            "content_type": "text/plain",
            "comments": "first contact",
            "valid": "1",
            "queues": str(ids["Support"]),
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/templates"
    [t] = await saved(db)
    assert (t.name, t.text, t.valid, t.comments, t.queue_ids, t.template_type) == (
        "Greeting",
        GREETING,
        True,
        "first contact",
        frozenset({ids["Support"]}),
        "Answer",
    )
    listing = await admin.get("/admin/templates")
    assert "Greeting" in listing.text and "Template &#39;Greeting&#39; saved." in listing.text
    # Edit: several queues by checkbox, not valid any more.
    answer = await admin.post(
        f"/admin/templates/{t.id}",
        data={
            "csrf_token": admin.csrf,
            "name": "Greeting",
            "text": GREETING + "\n",
            "content_type": "text/plain",
            "queues": [str(ids["Support"]), str(ids["Sales"])],
        },
    )
    assert answer.status_code == 303
    [t] = await saved(db)
    assert t.queue_ids == {ids["Support"], ids["Sales"]} and not t.valid
    edit = await admin.get(f"/admin/templates/{t.id}")
    assert edit.status_code == 200 and "thank you for your mail" in edit.text
    gone = await admin.post_form(f"/admin/templates/{t.id}/delete")
    assert gone.status_code == 303 and await saved(db) == []
    assert (await admin.get(f"/admin/templates/{t.id}")).status_code == 404


@pytest.mark.parametrize(
    ("text", "why"),
    [("Dear {{ customer.full_name ", "line 1"), ("{{ nobody.name }}", "nobody")],
)
async def test_a_broken_template_is_refused(
    login: Login, roles: Roles, db: Database, text: str, why: str
) -> None:
    admin = await login(roles.admin)
    answer = await admin.post_form("/admin/templates/new", {"name": "Broken", "text": text})
    assert answer.status_code == 400
    [line] = [x for x in answer.text.splitlines() if 'class="error"' in x]
    assert why in line and "Broken" in answer.text  # the form keeps what was entered
    assert await saved(db) == []


async def test_names_are_unique(login: Login, roles: Roles, db: Database) -> None:
    admin = await login(roles.admin)
    await admin.post_form("/admin/templates/new", {"name": "Greeting", "text": "Hi"})
    again = await admin.post_form("/admin/templates/new", {"name": "greeting", "text": "Hello"})
    assert again.status_code == 400 and "exists already" in again.text
    assert len(await saved(db)) == 1


async def test_admins_only(login: Login, anonymous: Callable[[], Any], roles: Roles) -> None:
    for who in (roles.rw, roles.ro, roles.other):
        client = await login(who)
        assert (await client.get("/admin/templates")).status_code == 403
        refused = await client.post_form("/admin/templates/new", {"name": "X", "text": "x"})
        assert refused.status_code == 403
    assert (await anonymous().get("/admin/templates")).status_code == 303


async def test_reply_starts_from_the_queues_template(
    login: Login, roles: Roles, db: Database, config: Config
) -> None:
    ids = await queue_ids(db)
    async with db.transaction() as conn:
        mine = await repo.save(
            conn,
            repo.TemplateValues(
                name="Greeting", text=GREETING, queue_ids=frozenset({ids["Support"]})
            ),
            by=1,
        )
        await repo.save(
            conn,
            repo.TemplateValues(
                name="Sales only", text="Buy more", queue_ids=frozenset({ids["Sales"]})
            ),
            by=1,
        )
    await deliver(config, db, realistic_mail())
    _id, tn = await newest_ticket(db)
    client = await login(roles.rw)
    form = await client.get(f"/tickets/{tn}/reply")
    assert "Greeting" in form.text and "Sales only" not in form.text
    chosen = await client.get(f"/tickets/{tn}/reply", params={"template": str(mine)})
    assert "Dear Alice Customer,\n\nthank you for your mail about Printer on fire." in chosen.text
    assert "&gt; the printer on floor 3" in chosen.text
