"""Agents' addresses beside Znuny are its `UserEmail` preferences (`schema/agent_address.py`):
`pytrs users`, the web's accounts, the postmaster's agent check and escalation notices read and
write them there, and never a `users.email` Znuny does not have."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from pytrs.schema import agent_access, escalation_due, ticket_repo, users_repo

from .conftest import Beside

pytestmark = pytest.mark.znuny


async def _preferences(beside: Beside, login: str) -> list[str]:
    async with beside.znuny.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT p.preferences_value FROM user_preferences p JOIN users u "
                "ON u.id = p.user_id WHERE u.login = :login AND p.preferences_key = 'UserEmail'"
            ),
            {"login": login},
        )
        return [r[0] for r in rows]


async def test_an_added_agent_s_address_is_its_useremail_preference(beside: Beside) -> None:
    db = beside.db
    await users_repo.add(
        db,
        users_repo.NewUser(login="ann", email="Ann@Example.COM", pw="h", queues=("Raw",)),
    )
    assert await _preferences(beside, "ann") == ["ann@example.com"]
    listed = await users_repo.one(db, login="ann")
    assert listed is not None and listed.email == "ann@example.com"
    assert listed.queues["Raw"] == "rw"  # Znuny's queues share group `users`
    account = await agent_access.by_login(db, "ann")
    assert account is not None and account.email == "ann@example.com"
    async with db.connect() as conn:
        found = await ticket_repo.agents_by_email(conn, {"ANN@example.com", "x@example.com"})
        assert found == {"ann@example.com": "ann"}
        owners = await escalation_due.owners(conn, [account.id])
        assert owners[account.id].email == "ann@example.com"
        writers = await escalation_due.queue_writers(conn, [1, 2])
        assert [a.email for a in writers[2]] == ["ann@example.com"]  # Raw is queue 2


async def test_a_changed_address_replaces_the_preference(beside: Beside) -> None:
    db = beside.db
    await users_repo.add(db, users_repo.NewUser(login="bob", email="bob@old.example", pw="h"))
    change = users_repo.Change(
        first_name="Bob", last_name="B", email="Bob@New.Example", admin=False, queues={}
    )
    await users_repo.change(db, "bob", change)
    assert await _preferences(beside, "bob") == ["bob@new.example"]
    async with db.connect() as conn:
        assert await ticket_repo.agents_by_email(conn, {"bob@old.example"}) == {}
        assert await ticket_repo.agents_by_email(conn, {"bob@new.example"}) == {
            "bob@new.example": "bob"
        }


async def test_an_agent_made_in_znuny_is_known_by_its_preference(beside: Beside) -> None:
    # As Znuny's agent form stores one: a users row, and the address as a preference — here
    # stored twice, which Znuny's table allows; the reads must not fail on it.
    async with beside.znuny.engine.begin() as conn:
        user_id = await conn.scalar(
            text(
                "INSERT INTO users (login, pw, first_name, last_name, valid_id, create_time, "
                "create_by, change_time, change_by) VALUES ('zed', 'x', 'Zed', 'Z', 1, "
                "now(), 1, now(), 1) RETURNING id"
            )
        )
        for _ in range(2):
            await conn.execute(
                text(
                    "INSERT INTO user_preferences (user_id, preferences_key, preferences_value) "
                    "VALUES (:id, 'UserEmail', 'zed@example.com')"
                ),
                {"id": user_id},
            )
    async with beside.db.connect() as conn:
        assert await ticket_repo.agents_by_email(conn, {"zed@example.com"}) == {
            "zed@example.com": "zed"
        }
    listed = await users_repo.one(beside.db, login="zed")
    assert listed is not None and listed.email == "zed@example.com"
    async with beside.db.connect() as conn:
        assert (await escalation_due.owners(conn, [user_id]))[user_id].email == "zed@example.com"


async def test_an_agent_without_useremail_has_no_address(beside: Beside) -> None:
    # As root@localhost in a fresh Znuny: a users row without a UserEmail preference.
    async with beside.znuny.engine.begin() as conn:
        user_id = await conn.scalar(
            text(
                "INSERT INTO users (login, pw, first_name, last_name, valid_id, create_time, "
                "create_by, change_time, change_by) VALUES ('nomail', 'x', 'No', 'Mail', 1, "
                "now(), 1, now(), 1) RETURNING id"
            )
        )
    listed = await users_repo.one(beside.db, login="nomail")
    assert listed is not None and listed.email == ""
    async with beside.db.connect() as conn:
        assert await escalation_due.owners(conn, [user_id]) == {}


async def test_an_agent_s_roles_give_queue_access_beside_znuny(beside: Beside) -> None:
    # As Znuny's role admin stores it: a role with rw on group `users` (Znuny's queues' group),
    # the agent in it, no group_user row of its own. A second, invalid role gives nothing.
    async with beside.znuny.engine.begin() as conn:
        audit = "now(), 1, now(), 1"
        user_id = await conn.scalar(
            text(
                "INSERT INTO users (login, pw, first_name, last_name, valid_id, create_time, "
                f"create_by, change_time, change_by) VALUES ('rita', 'x', 'Rita', 'R', 1, {audit}) "
                "RETURNING id"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO user_preferences (user_id, preferences_key, preferences_value) "
                "VALUES (:id, 'UserEmail', 'rita@example.com')"
            ),
            {"id": user_id},
        )
        for name, valid, group in (("Desk", 1, 1), ("Gone", 2, 2)):
            role_id = await conn.scalar(
                text(
                    "INSERT INTO roles (name, valid_id, create_time, create_by, change_time, "
                    f"change_by) VALUES (:name, :valid, {audit}) RETURNING id"
                ),
                {"name": name, "valid": valid},
            )
            await conn.execute(
                text(
                    "INSERT INTO group_role (role_id, group_id, permission_key, permission_value, "
                    f"create_time, create_by, change_time, change_by) VALUES (:role, :group, "
                    f"'rw', 1, {audit})"
                ),
                {"role": role_id, "group": group},
            )
            await conn.execute(
                text(
                    "INSERT INTO role_user (user_id, role_id, create_time, create_by, change_time, "
                    f"change_by) VALUES (:user, :role, {audit})"
                ),
                {"user": user_id, "role": role_id},
            )
    account = await agent_access.by_id(beside.db, user_id)
    assert account is not None
    assert account.admin is False  # the invalid role's rw on group admin (2) counts for nothing
    assert account.queues and set(account.queues.values()) == {"rw"}
    async with beside.db.connect() as conn:
        assert "rita" in await agent_access.writers_of(conn, 2)
        writers = await escalation_due.queue_writers(conn, [2])
        assert [a.login for a in writers[2]] == ["rita"]
