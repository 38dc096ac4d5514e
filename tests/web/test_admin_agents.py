"""`/admin/agents`: accounts added and changed as `pytrs users` does (same rows, same rules),
passwords checked and hashed with argon2id, and an admin who cannot lock themself out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema import users_repo
from pytrs.schema.database import Database
from pytrs.schema.tables import queue
from pytrs.users.passwords import verify

SECRET = "a long enough secret"


@pytest.fixture
async def admin(make_user: Callable[..., Awaitable[int]], login: Any) -> Any:
    await make_user("root", role="admin")
    return await login("root")


async def _queue_ids(db: Database) -> dict[str, int]:
    async with db.connect() as conn:
        return dict((await conn.execute(select(queue.c.name, queue.c.id))).all())


async def _new(db: Database, **change: str) -> dict[str, str]:
    ids = await _queue_ids(db)
    return {
        "login": "bea", "email": "Bea@Example.com", "name": "Bea Stone", "role": "agent",
        "all_queues": "", f"queue.{ids['Raw']}": "rw", f"queue.{ids['Junk']}": "ro",
        "password": SECRET, "password2": SECRET, **change,
    }  # fmt: skip


async def _stored_hash(db: Database, login: str) -> str:
    from pytrs.schema.tables import users

    async with db.connect() as conn:
        return str(await conn.scalar(select(users.c.pw).where(users.c.login == login)))


async def test_add_an_agent_with_queues_and_a_password(
    admin: Any, db: Database, login: Any
) -> None:
    added = await admin.post_form("/admin/agents", await _new(db))
    assert added.status_code == 303, added.text
    bea = await users_repo.one(db, login="bea")
    assert bea is not None
    assert (bea.name, bea.email, bea.admin, bea.valid) == (
        "Bea Stone",
        "bea@example.com",
        False,
        True,
    )
    # Raw and Junk share the seeded group `users`: rw wins, as in Znuny.
    assert bea.queues["Raw"] == "rw"
    assert verify(await _stored_hash(db, "bea"), SECRET)
    page = (await admin.get("/admin/agents")).text
    assert "Added agent bea." in page and SECRET not in page
    assert (await (await login("bea", SECRET)).get("/admin")).status_code == 403


async def test_an_admin_with_every_queue_read_only(admin: Any, db: Database) -> None:
    data = await _new(db, login="cy", role="admin", all_queues="ro")
    assert (await admin.post_form("/admin/agents", data)).status_code == 303
    cy = await users_repo.one(db, login="cy")
    assert cy is not None and cy.admin and set(cy.queues.values()) == {"ro"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"login": "has space"}, "a login may not be empty or hold spaces"),
        ({"login": "root"}, "login root: the login exists"),
        ({"email": "two@a.example, b@b.example"}, "email must be one e-mail address"),
        ({"email": "nobody"}, "email must be an e-mail address"),
        ({"password": "short", "password2": "short"}, "the password is too short"),
        ({"password2": "something else"}, "the passwords differ"),
        ({"role": "boss"}, "role: choose agent or admin"),
    ],
)
async def test_a_bad_account_is_refused_in_one_line(
    admin: Any, db: Database, change: dict[str, str], error: str
) -> None:
    refused = await admin.post_form("/admin/agents", await _new(db, **change))
    assert refused.status_code == 400
    assert error in refused.text.replace("&#39;", "'")
    assert SECRET not in refused.text  # a password is never sent back
    if change.get("login") != "root":
        assert await users_repo.one(db, login=change.get("login", "bea")) is None


async def test_edit_reset_disable_enable(admin: Any, db: Database, login: Any) -> None:
    await admin.post_form("/admin/agents", await _new(db))
    bea = await users_repo.one(db, login="bea")
    assert bea is not None
    ids = await _queue_ids(db)
    change = {"email": "bea@new.example", "name": "Bea Berg", "role": "agent", "all_queues": "",
              f"queue.{ids['Raw']}": "ro"}  # fmt: skip
    assert (await admin.post_form(f"/admin/agents/{bea.id}", change)).status_code == 303
    bea = await users_repo.one(db, login="bea")
    assert bea is not None and (bea.email, bea.name) == ("bea@new.example", "Bea Berg")
    assert set(bea.queues.values()) == {"ro"}
    bad = await admin.post_form(
        f"/admin/agents/{bea.id}/password", {"password": "x", "password2": "x"}
    )
    assert bad.status_code == 303
    assert "the password is too short" in (await admin.get(bad.headers["location"])).text
    new = "another long secret"
    reset = await admin.post_form(
        f"/admin/agents/{bea.id}/password", {"password": new, "password2": new}
    )
    assert reset.status_code == 303 and verify(await _stored_hash(db, "bea"), new)
    assert (
        await admin.post_form(f"/admin/agents/{bea.id}/validity", {"valid": "0"})
    ).status_code == 303
    assert not (await users_repo.one(db, login="bea")).valid  # type: ignore[union-attr]
    await admin.post_form(f"/admin/agents/{bea.id}/validity", {"valid": "1"})
    assert (await users_repo.one(db, login="bea")).valid  # type: ignore[union-attr]
    assert (await (await login("bea", new)).get("/admin")).status_code == 403  # signs in again


async def test_an_admin_cannot_disable_or_demote_themself(admin: Any, db: Database) -> None:
    me = await users_repo.one(db, login="root")
    assert me is not None
    demote = {"email": me.email, "name": me.name, "role": "agent", "all_queues": "rw"}
    refused = await admin.post_form(f"/admin/agents/{me.id}", demote)
    assert refused.status_code == 400 and "you cannot demote yourself" in refused.text
    disabled = await admin.post_form(f"/admin/agents/{me.id}/validity", {"valid": "0"})
    assert "you cannot disable yourself" in (await admin.get(disabled.headers["location"])).text
    me = await users_repo.one(db, login="root")
    assert me is not None and me.admin and me.valid


async def test_names_are_escaped_and_unknown_agents_are_404(admin: Any, db: Database) -> None:
    data = await _new(db, name="<script>alert(1)</script>")
    assert (await admin.post_form("/admin/agents", data)).status_code == 303
    page = (await admin.get("/admin/agents")).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert (await admin.get("/admin/agents/99999")).status_code == 404
