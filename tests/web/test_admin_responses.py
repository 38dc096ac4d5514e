"""The auto-response pages: saved through the same checks as `pytrs responses import` (the
sandbox compiles both templates), refusals in one line per problem, and a preview rendered
against a real ticket that stores nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.schema.database import Database
from pytrs.schema.response_repo import export_responses
from pytrs.vocabulary.auto_responses import ResponseSpec

from .test_filter_bench import make_ticket, row_counts

Login = Callable[..., Awaitable[Any]]

SUBJECT = "[{{ ticket.hook }}{{ ticket.tn }}] Re: {{ article.subject }}"
BODY = (
    "Dear {{ customer.full_name }},\n\nwe got your mail about {{ ticket.title }}.\n{{ quoted }}\n"
)


@pytest.fixture
async def admin(db: Database, config: Config, make_user: Any, login: Login) -> Any:
    await provision(db, config)
    await make_user("root", role="admin")
    return await login("root")


def form(**kw: Any) -> dict[str, Any]:
    data = {
        "name": "support-reply", "type": "auto reply", "queues": ["Support"],
        "language": "en", "content_type": "text/plain", "sender": "", "valid": "on",
        "subject": SUBJECT, "body": BODY, "comments": "", "action": "save",
    }  # fmt: skip
    return data | kw


async def post(client: Any, url: str, data: dict[str, Any]) -> Any:
    return await client.post(url, data={**data, "csrf_token": client.csrf})


async def responses(db: Database) -> dict[str, ResponseSpec]:
    async with db.connect() as conn:
        return {spec.name: spec for spec in await export_responses(conn)}


async def test_create_list_and_edit(admin: Any, db: Database) -> None:
    answer = await post(admin, "/admin/responses/new", form(queues=["Support", "Sales"]))
    assert answer.status_code == 303, answer.text
    stored = (await responses(db))["support-reply"]
    assert sorted(stored.queues) == ["Sales", "Support"]
    assert stored.sender == "support@example.com"  # the first queue's address
    assert stored.body == BODY
    page = (await admin.get("/admin/responses")).text
    assert ("support-reply" in page and "Sales, Support" in page) or "Support, Sales" in page

    edited = form(body="Thanks, {{ customer.full_name }}.\n", valid="")
    del edited["valid"]
    answer = await post(admin, "/admin/responses/edit?name=support-reply", edited)
    assert answer.status_code == 303, answer.text
    stored = (await responses(db))["support-reply"]
    assert stored.body == "Thanks, {{ customer.full_name }}.\n" and not stored.valid


@pytest.mark.parametrize(
    ("field", "source", "why"),
    [
        ("subject", "{{ ticket.tn ", "expected &#39;end of print statement&#39;"),
        ("body", "{{ ''.__class__ }}", "refused by the sandbox"),
        ("body", "{{ cycler.__init__.__globals__ }}", "refused by the sandbox"),
        ("body", "{{ ticket.nope }}", "has no attribute &#39;nope&#39;"),
    ],
)
async def test_broken_or_escaping_templates_are_refused(
    admin: Any, db: Database, field: str, source: str, why: str
) -> None:
    answer = await post(admin, "/admin/responses/new", form(**{field: source}))
    assert answer.status_code == 400
    problems = answer.text.split('<ul class="error problems" role="alert">')[1].split("</ul>")[0]
    assert problems.count("<li>") == 1  # one line
    assert f"response support-reply: {field}: template support-reply:{field}" in problems
    assert why in problems
    assert "support-reply" not in await responses(db)
    assert "&lt;class" not in answer.text  # nothing rendered the escape attempt


async def test_unknown_queue_is_refused(admin: Any, db: Database) -> None:
    answer = await post(admin, "/admin/responses/new", form(queues=["Nowhere"]))
    assert answer.status_code == 400
    assert "response support-reply: queues: unknown queue &#39;Nowhere&#39;" in answer.text
    assert await responses(db) == {}


async def test_preview_renders_against_a_real_ticket_and_stores_nothing(
    admin: Any, db: Database, config: Config
) -> None:
    tn = await make_ticket(config, db, "Printer <b>on</b> fire")
    before = await row_counts(db)
    answer = await post(admin, "/admin/responses/new", form(action="preview", ticket=tn))
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert f"[Ticket#{tn}] Re: Printer &lt;b&gt;on&lt;/b&gt; fire" in page
    assert "Dear Alice Customer," in page
    assert "&gt; Hello, the printer is on fire." in page  # quoted from the article
    assert await row_counts(db) == before


async def test_preview_of_a_missing_ticket_is_one_line(admin: Any) -> None:
    answer = await post(admin, "/admin/responses/new", form(action="preview", ticket="999999"))
    assert answer.status_code == 200
    assert '<p class="error" role="alert">There is no ticket 999999.</p>' in answer.text


async def test_preview_refuses_a_sandbox_escape(admin: Any, db: Database, config: Config) -> None:
    tn = await make_ticket(config, db)
    answer = await post(
        admin, "/admin/responses/new", form(action="preview", ticket=tn, body="{{ ''.__class__ }}")
    )
    assert "refused by the sandbox" in answer.text and "&lt;class" not in answer.text


async def test_provisioned_response_cannot_be_changed_here(
    db: Database, database_settings: dict[str, Any], make_user: Any, login: Login
) -> None:
    from tests.conftest import make_config

    owned = make_config(
        database_settings,
        auto_responses=[{"queue": "Support", "type": "auto reply", "subject": "S", "body": "B"}],
    )
    await provision(db, owned)
    await make_user("root", role="admin")
    client = await login("root")
    [name] = await responses(db)
    page = await client.get(f"/admin/responses/edit?name={name}")
    assert "provisioned from <code>[[auto_responses]]</code>" in page.text
    answer = await post(client, f"/admin/responses/edit?name={name}", form(body="changed"))
    assert answer.status_code == 400
    assert "change it there" in answer.text
    assert (await responses(db))[name].body == "B"


async def test_save_needs_csrf(admin: Any, db: Database) -> None:
    answer = await admin.post("/admin/responses/new", data=form())
    assert answer.status_code == 403
    assert await responses(db) == {}
