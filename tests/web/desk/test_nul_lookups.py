"""NUL characters from the outside (a URL, a form): PostgreSQL's text cannot hold them, so a
lookup by such a value must answer "not found" instead of failing the query (a 500 page and a
traceback in the log, for any agent's typo or any stranger's probe). Both engines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytrs.schema.database import Database

from ...helpers import articles
from ..zoom_support import (
    Roles,
    newest_ticket,
)

Login = Callable[..., Awaitable[Any]]


@pytest.mark.parametrize("number", ["%00", "1%002"])
async def test_nul_in_ticket_number_is_404(login: Login, roles: Roles, number: str) -> None:
    """Hole: on PostgreSQL a NUL in the URL's ticket number failed the query (a 500 page and
    a traceback in the log for any agent's typo or probe) instead of the 404 page."""
    client = await login(roles.rw)
    for url in (f"/tickets/{number}", f"/tickets/{number}/reply"):
        assert (await client.get(url)).status_code == 404
    assert (await client.post_form(f"/tickets/{number}/note", {"body": "x"})).status_code == 404


async def test_nul_in_merge_target_is_refused_as_missing(
    login: Login, roles: Roles, tn: str
) -> None:
    client = await login(roles.rw)
    answer = await client.post_form(f"/tickets/{tn}/merge", {"into": "12\x0034"})
    assert answer.status_code == 303
    page = await client.get(f"/tickets/{tn}")
    assert "you may merge into" in page.text


async def test_nul_in_login_is_a_failed_login(anonymous: Callable[..., Any], roles: Roles) -> None:
    """Hole: on PostgreSQL a NUL in the login name (anyone can send one) was a 500 page."""
    client = anonymous()
    await client.get("/login")
    answer = await client.post_form("/login", {"login": "jdoe\x00", "password": "x"})
    assert answer.status_code == 200
    assert "Login failed" in answer.text


async def test_nul_in_a_note_is_dropped(login: Login, roles: Roles, tn: str, db: Database) -> None:
    """Hole: on PostgreSQL a NUL typed (or sent) in an action's text field was a 500 page."""
    client = await login(roles.rw)
    answer = await client.post_form(f"/tickets/{tn}/note", {"body": "first\x00second"})
    assert answer.status_code == 303
    ticket_id, _ = await newest_ticket(db)
    assert "firstsecond" in [a["a_body"] for a in await articles(db, ticket_id)]


async def test_nul_in_a_preview_ticket_number_is_no_such_ticket(login: Login, roles: Roles) -> None:
    """Hole: the auto-response preview looked up its ticket number as typed (a 500 page)."""
    client = await login(roles.admin)
    form = {
        "action": "preview",
        "ticket": "1\x002",
        "subject": "Re: x",
        "body": "Thanks.",
        "content_type": "text/plain",
    }
    answer = await client.post_form("/admin/responses/new", form)
    assert answer.status_code == 200
    assert "There is no ticket 1" in answer.text
