"""`/admin/agents` for agents the configuration's `[[agents]]` names: their address, validity
and queue access are shown read-only ("managed by the configuration file") and an edit of them
is refused in one line, since the next start would undo it; name, role and password stay
editable, and survive the next start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.schema import users_repo
from pytrs.schema.database import Database
from pytrs.schema.users_repo import UserRow
from pytrs.users.passwords import verify

from ..conftest import make_config
from .test_admin_agents import SECRET, _queue_ids, _stored_hash

REFUSED = (
    "filed: the e-mail address, validity and queue access are managed by the configuration file"
)


def _filed(database_settings: dict[str, Any]) -> Config:
    agents = [{"login": "filed", "email": "filed@agents.example", "queues": ["Support"]}]
    return make_config(database_settings, agents=agents)


@pytest.fixture
async def admin(
    make_user: Callable[..., Awaitable[int]], login: Any, db: Database,
    database_settings: dict[str, Any],
) -> Any:  # fmt: skip
    await provision(db, _filed(database_settings))
    await make_user("root", role="admin")
    return await login("root")


async def _filed_row(db: Database) -> UserRow:
    found = await users_repo.one(db, login="filed")
    assert found is not None
    return found


async def test_shown_read_only(admin: Any, db: Database) -> None:
    filed = await _filed_row(db)
    assert filed.provisioned and not (await users_repo.one(db, login="root")).provisioned  # type: ignore[union-attr]
    listing = (await admin.get("/admin/agents")).text
    assert listing.count("managed by the configuration file") == 1
    assert f'<a href="/admin/agents/{filed.id}">Name, role, password</a>' in listing
    page = (await admin.get(f"/admin/agents/{filed.id}")).text
    assert 'id="managed"' in page and "Support (rw)" in page and "filed@agents.example" in page
    assert 'name="email"' not in page and 'name="all_queues"' not in page
    assert f'action="/admin/agents/{filed.id}/validity"' not in page
    assert f'action="/admin/agents/{filed.id}/password"' in page


async def test_edits_of_what_the_file_owns_are_refused(admin: Any, db: Database) -> None:
    filed = await _filed_row(db)
    ids = await _queue_ids(db)
    for change in (
        {"email": "other@agents.example", "name": "Fi Led", "role": "agent"},
        {"email": filed.email, "name": "Fi Led", "role": "agent", f"queue.{ids['Sales']}": "rw"},
        {"name": "Fi Led", "role": "agent", "all_queues": "ro"},
    ):
        refused = await admin.post_form(f"/admin/agents/{filed.id}", change)
        assert refused.status_code == 400 and REFUSED in refused.text, change
    disabled = await admin.post_form(f"/admin/agents/{filed.id}/validity", {"valid": "0"})
    assert REFUSED in (await admin.get(disabled.headers["location"])).text
    assert await _filed_row(db) == filed  # nothing changed


async def test_name_role_and_password_stay_editable_across_a_start(
    admin: Any, db: Database, login: Any, database_settings: dict[str, Any]
) -> None:
    filed = await _filed_row(db)
    saved = await admin.post_form(f"/admin/agents/{filed.id}", {"name": "Fi Led", "role": "admin"})
    assert saved.status_code == 303
    reset = await admin.post_form(
        f"/admin/agents/{filed.id}/password", {"password": SECRET, "password2": SECRET}
    )
    assert reset.status_code == 303 and verify(await _stored_hash(db, "filed"), SECRET)
    await provision(db, _filed(database_settings))  # the next start
    after = await _filed_row(db)
    assert (after.name, after.admin, after.email, after.valid) == (
        "Fi Led", True, "filed@agents.example", True,
    )  # fmt: skip
    assert after.queues["Support"] == "rw"  # the file's access stays
    assert (await (await login("filed", SECRET)).get("/admin")).status_code == 200
    demoted = await admin.post_form(f"/admin/agents/{filed.id}", {"name": "Fi", "role": "agent"})
    assert demoted.status_code == 303
    after = await _filed_row(db)
    assert (after.name, after.admin, after.queues["Support"]) == ("Fi", False, "rw")
