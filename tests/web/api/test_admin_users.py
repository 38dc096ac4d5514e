"""`/api/v1/users`: accounts added and changed through the API as `pytrs users` and the admin
page do (same rows, same rules, no hash ever shown); a new account can then sign in and use a
token; an admin cannot lock themself out; what the configuration file manages stays its own."""

from __future__ import annotations

from typing import Any

import pytest

from pytrs.provisioning import provision
from pytrs.schema import users_repo
from pytrs.schema.database import Database
from pytrs.users.passwords import verify

from ...conftest import make_config
from ..test_admin_agents import _stored_hash
from ..zoom_support import Roles

SECRET = "a long enough secret"
ADMIN = Roles.admin


@pytest.fixture
async def admin(make_token: Any, api_client: Any) -> Any:
    """The desk's administrator, through a token of scope admin."""
    return api_client(await make_token(ADMIN, scope="admin"))


async def test_add_list_change_and_use_an_account(
    admin: Any, db: Database, login: Any, make_token: Any, api_client: Any
) -> None:
    body = {
        "login": "bea",
        "email": "Bea@Example.com",
        "name": "Bea Stone",
        "queues": {"Sales": "rw"},
        "password": SECRET,
    }
    added = await admin.post("/users", json=body)
    assert added.status_code == 201, added.text
    shown = added.json()
    assert shown == {
        "id": shown["id"],
        "login": "bea",
        "name": "Bea Stone",
        "email": "bea@example.com",
        "role": "agent",
        "valid": True,
        "queues": {"Sales": "rw"},
        "managed": False,
    }
    assert verify(await _stored_hash(db, "bea"), SECRET)
    # The new account signs in to the web and works through a token of its own.
    await login("bea", SECRET)
    bea = api_client(await make_token("bea", scope="read"))
    assert [q["name"] for q in (await bea.get("/queues")).json()] == ["Sales"]
    assert (await bea.get("/users")).status_code == 403

    # Pages by login, and no page ever holds a hash.
    first = (await admin.get("/users", params={"limit": 4})).json()
    assert [u["login"] for u in first["items"]] == ["bea", "boss", "jdoe", "reader"]
    rest = (await admin.get("/users", params={"cursor": first["next_cursor"]})).json()
    assert [u["login"] for u in rest["items"]] == ["seller"] and rest["next_cursor"] is None
    assert "argon2" not in str(first) + str(rest) and "password" not in str(first) + str(rest)

    changed = await admin.patch(
        "/users/bea", json={"email": "bea@new.example", "role": "admin", "queues": {"Sales": "ro"}}
    )
    assert changed.status_code == 200, changed.text
    row = await users_repo.one(db, login="bea")
    assert row is not None
    assert (row.email, row.admin, row.queues, row.name) == (
        "bea@new.example",
        True,
        {"Sales": "ro"},
        "Bea Stone",
    )

    renewed = await admin.post("/users/bea/password", json={"password": "another secret"})
    assert renewed.status_code == 204
    assert verify(await _stored_hash(db, "bea"), "another secret")

    disabled = await admin.patch("/users/bea", json={"valid": False})
    assert disabled.json()["valid"] is False
    assert (await bea.get("/queues")).status_code == 401  # a disabled account's token is dead


async def test_refusals(admin: Any, assert_problem: Any, db: Database) -> None:
    cases = [
        ({"login": "two words", "email": "x@example.com"}, "login"),
        ({"login": "x", "email": "X <x@example.com>"}, "email"),
        ({"login": "x", "email": "x@example.com", "password": "short"}, "password"),
        ({"login": "x", "email": "x@example.com", "role": "owner"}, "role"),
        ({"login": "x", "email": "x@example.com", "queues": {"Sales": "rx"}}, "queues.Sales"),
        ({"login": "x", "email": "x@example.com", "pw": "$argon2id$…"}, "pw"),
        ({"login": "x", "email": "x@example.com", "name": "a" * 101}, "name"),
    ]
    for body, field in cases:
        answer = await admin.post("/users", json=body)
        problem = assert_problem(answer, 422, "validation-failed")
        assert [e["field"] for e in problem["errors"]] == [field], problem
    assert not await users_repo.exists(db, "x")

    unknown = await admin.post(
        "/users", json={"login": "x", "email": "x@example.com", "queues": {"Nowhere": "rw"}}
    )
    assert "Nowhere" in assert_problem(unknown, 422, "unknown-name")["detail"]
    taken = await admin.post("/users", json={"login": "jdoe", "email": "r@example.com"})
    assert_problem(taken, 409, "conflict")
    for answer in (
        await admin.get("/users/nobody"),
        await admin.patch("/users/nobody", json={"name": "N"}),
        await admin.post("/users/nobody/password", json={"password": SECRET}),
    ):
        assert_problem(answer, 404, "not-found")
    not_a_bool = await admin.patch("/users/jdoe", json={"valid": 0})  # JSON's types, strictly
    assert [e["field"] for e in assert_problem(not_a_bool, 422, "validation-failed")["errors"]] == [
        "valid"
    ]
    for change in ({"role": "agent"}, {"valid": False}):
        answer = await admin.patch(f"/users/{ADMIN}", json=change)
        assert_problem(answer, 422, "own-account")
    row = await users_repo.one(db, login=ADMIN)
    assert row is not None and row.admin and row.valid
    # A login longer than a first name may be: the name it defaults to is cut to fit.
    long_login = await admin.post("/users", json={"login": "l" * 150, "email": "l@example.com"})
    assert long_login.status_code == 201 and long_login.json()["name"] == "l" * 100


async def test_an_account_the_file_manages(
    admin: Any, db: Database, assert_problem: Any, database_settings: dict[str, Any]
) -> None:
    agents = [{"login": "filed", "email": "filed@agents.example", "queues": ["Sales"]}]
    await provision(db, make_config(database_settings, agents=agents))
    shown = (await admin.get("/users/filed")).json()
    assert shown["managed"] is True and shown["queues"] == {"Sales": "rw"}
    for change in ({"email": "other@example.com"}, {"queues": {}}, {"valid": False}):
        answer = await admin.patch("/users/filed", json=change)
        problem = assert_problem(answer, 409, "managed-by-configuration")
        assert "configuration file" in problem["detail"]
    # What the file owns may be repeated as it is; name and role are the admin's.
    same = {"email": "filed@agents.example", "queues": {"Sales": "rw"}, "valid": True}
    renamed = await admin.patch("/users/filed", json={**same, "name": "Fil Ed", "role": "admin"})
    assert renamed.status_code == 200, renamed.text
    row = await users_repo.one(db, login="filed")
    assert row is not None and (row.name, row.admin, row.email, row.valid) == (
        "Fil Ed",
        True,
        "filed@agents.example",
        True,
    )
