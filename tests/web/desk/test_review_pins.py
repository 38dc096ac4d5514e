"""What the adversarial review of the web view checked and found sound, pinned so it stays so:
a new CSRF token at login (no session fixation), downloads never stored by caches and never
rendered, an owner only among the valid agents (both engines).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update

from pytrs.schema.database import Database
from pytrs.schema.tables import users

from ...helpers import tickets
from ..conftest import PASSWORD
from ..zoom_support import (
    Roles,
    article_ids,
    newest_ticket,
)

Login = Callable[..., Awaitable[Any]]


async def test_login_starts_a_new_session(anonymous: Callable[..., Any], roles: Roles) -> None:
    """A token planted before login (a fixated session) is worth nothing after it."""
    client = anonymous()
    await client.get("/login")
    planted = client.csrf
    signed_in = await client.post_form("/login", {"login": roles.rw, "password": PASSWORD})
    assert signed_in.status_code == 303
    assert client.csrf and client.csrf != planted
    old = await client.post("/logout", data={"csrf_token": planted})
    assert old.status_code == 403


async def test_downloads_are_neither_stored_nor_rendered(
    login: Login, roles: Roles, tn: str, db: Database
) -> None:
    first = (await article_ids(db, (await newest_ticket(db))[0]))[0]
    client = await login(roles.ro)
    for url in (
        f"/tickets/{tn}/articles/{first}/attachments/2",
        f"/tickets/{tn}/articles/{first}/raw",
    ):
        got = await client.get(url)
        assert got.status_code == 200
        assert got.headers["cache-control"] == "no-store"
        assert got.headers["content-disposition"].startswith("attachment;")
        assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
        assert got.headers["x-content-type-options"] == "nosniff"


async def test_owner_is_a_valid_agent(login: Login, roles: Roles, tn: str, db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(update(users).where(users.c.login == roles.other).values(valid_id=2))
    client = await login(roles.rw)
    for owner in ("ghost", roles.other):
        answer = await client.post_form(f"/tickets/{tn}/update", {"owner": owner})
        assert answer.status_code == 303
        page = (await client.get(f"/tickets/{tn}")).text
        assert f"no valid agent &#39;{owner}&#39;" in page
        assert (await tickets(db))[0]["user_id"] == 1  # still the system user's
