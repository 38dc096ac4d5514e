"""`pytrs users add|passwd|list|disable`: the real command against the test database, checked
in Znuny's `users` and `group_user` rows and with argon2 itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import select

from pytrs.provisioning import provision
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import group_user, permission_groups, queue, users

from .conftest import make_config
from .test_cli import pytrs, write_config
from .test_cli_errors import one_line

SALES, ARCHIVE = 10, 11  # groups made here, above Znuny's seeded ones


@pytest.fixture
def cli(tmp_path: Path, database_settings: dict[str, Any]) -> Path:
    return write_config(tmp_path / "pytrs.toml", database_settings)


@pytest.fixture
async def queues(db: Database) -> None:
    """Sales and Leads share group `sales`; Old (invalid) is alone in group `archive`. The
    seeded queues (Postmaster, Raw, Junk, Misc) are in group `users`."""
    audit = {"create_time": utcnow(), "create_by": 1, "change_time": utcnow(), "change_by": 1}
    async with db.transaction() as conn:
        await conn.execute(
            permission_groups.insert(),
            [{"id": SALES, "name": "sales", "valid_id": 1},
             {"id": ARCHIVE, "name": "archive", "valid_id": 1}],
        )  # fmt: skip
        await conn.execute(
            queue.insert(),
            [
                {"id": 50 + i, "name": name, "group_id": group, "follow_up_id": 1,
                 "valid_id": valid, **audit}
                for i, (name, group, valid) in enumerate(
                    [("Sales", SALES, 1), ("Leads", SALES, 1), ("Old", ARCHIVE, 2)]
                )
            ],
        )  # fmt: skip


async def stored(db: Database, login: str) -> tuple[Any, set[tuple[int, str]]]:
    async with db.connect() as conn:
        user = (await conn.execute(select(users).where(users.c.login == login))).one()
        grants = await conn.execute(
            select(group_user.c.group_id, group_user.c.permission_key).where(
                group_user.c.user_id == user.id
            )
        )
        return user, {(g.group_id, g.permission_key) for g in grants}


def listed(cli: Path) -> dict[str, Any]:
    result = pytrs(cli, "users", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert b"$argon2" not in result.stdout
    return {row["login"]: row for row in json.loads(result.stdout)}


async def test_add_list_passwd_disable(cli: Path, db: Database, queues: None) -> None:
    added = pytrs(
        cli, "users", "add", "anna", "--email", "Anna@Example.com", "--role", "agent",
        "--queues", "Sales", "--name", "Anna Berg", "--password-stdin",
        stdin=b"correct horse\nignored second line\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.decode().strip() == "added agent anna"
    anna, grants = await stored(db, "anna")
    assert anna.pw.startswith("$argon2id$")
    assert PasswordHasher().verify(anna.pw, "correct horse")
    assert (anna.email, anna.first_name, anna.last_name, anna.valid_id) == (
        "anna@example.com", "Anna", "Berg", 1,
    )  # fmt: skip
    assert grants == {(SALES, "rw")}

    admin = pytrs(
        cli, "users", "add", "boss", "--email", "boss@example.com", "--role", "admin",
        "--all-queues", "--password-stdin", stdin=b"another secret\n",
    )  # fmt: skip
    assert admin.returncode == 0, admin.stderr
    _, grants = await stored(db, "boss")
    # Every group a valid queue uses (users, sales), not the invalid queue's; and `admin`.
    assert grants == {(1, "rw"), (SALES, "rw"), (2, "rw")}

    rows = listed(cli)
    assert rows["anna"] == {
        "login": "anna", "name": "Anna Berg", "email": "anna@example.com", "role": "agent",
        "queues": {"Leads": "rw", "Sales": "rw"}, "valid": True,
    }  # fmt: skip
    assert rows["boss"]["role"] == "admin" and rows["boss"]["name"] == "boss"
    assert set(rows["boss"]["queues"]) == {"Junk", "Leads", "Misc", "Postmaster", "Raw", "Sales"}
    assert "root@localhost" not in rows

    text = pytrs(cli, "users", "list")
    assert text.returncode == 0, text.stderr
    line = next(x for x in text.stdout.decode().splitlines() if x.startswith("anna "))
    assert "Leads (rw), Sales (rw)" in line and "agent" in line
    assert "$argon2" not in text.stdout.decode()

    changed = pytrs(cli, "users", "passwd", "anna", "--password-stdin", stdin=b"battery staple\n")
    assert changed.returncode == 0, changed.stderr
    anna, _ = await stored(db, "anna")
    assert PasswordHasher().verify(anna.pw, "battery staple")
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(anna.pw, "correct horse")

    disabled = pytrs(cli, "users", "disable", "anna")
    assert disabled.returncode == 0, disabled.stderr
    assert b"valid_id = 2" in disabled.stdout
    assert listed(cli)["anna"]["valid"] is False
    assert listed(cli)["boss"]["valid"] is True


async def test_read_only_queue_access(cli: Path, db: Database, queues: None) -> None:
    added = pytrs(
        cli, "users", "add", "viewer", "--email", "v@example.com", "--role", "agent",
        "--queues", "Leads,Misc", "--read-only", "--password-stdin", stdin=b"look only 123\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    _, grants = await stored(db, "viewer")
    assert grants == {(SALES, "ro"), (1, "ro")}
    assert listed(cli)["viewer"]["queues"]["Sales"] == "ro"


async def test_refusals(cli: Path, db: Database, queues: None) -> None:
    def add(login: str, *extra: str, password: bytes = b"long enough\n") -> Any:
        return pytrs(
            cli, "users", "add", login, "--role", "agent", "--password-stdin", *extra,
            stdin=password,
        )  # fmt: skip

    assert add("anna", "--email", "anna@example.com").returncode == 0
    one_line(add("anna", "--email", "other@example.com"), 1, "anna: the login exists")
    one_line(add("bob", "--email", "b@example.com", password=b"short\n"), 2, "at least 8")
    one_line(add("bob", "--email", "b@example.com", password=b"\n"), 2, "password is empty")
    one_line(add("bob", "--email", "b@example.com", password=b""), 2, "password is empty")
    one_line(
        add("bob", "--email", "b@example.com", "--queues", "Sales,Nowhere"), 2,
        "no such queue: Nowhere",
    )  # fmt: skip
    one_line(add("bob", "--email", "a@example.com, b@example.com"), 2, "one e-mail address")
    one_line(add("bob", "--email", "bob"), 2, "e-mail address")
    one_line(add("bo b", "--email", "b@example.com"), 2, "may not be empty or hold spaces")
    # Nothing of the refused adds was stored.
    assert set(listed(cli)) == {"anna"}
    # No --password-stdin and no terminal (the tests' stdin is a pipe): nothing to ask on.
    no_tty = pytrs(cli, "users", "add", "bob", "--email", "b@example.com", "--role", "agent")
    one_line(no_tty, 2, "--password-stdin")
    one_line(pytrs(cli, "users", "disable", "nobody"), 1, "no such login: nobody")
    missing = pytrs(cli, "users", "passwd", "nobody", "--password-stdin", stdin=b"long enough\n")
    one_line(missing, 1, "no such login: nobody")
    one_line(pytrs(cli, "users", "passwd", "anna", "--password-stdin", stdin=b"tiny\n"), 2)
    one_line(pytrs(cli, "users", "add", "x", "--email", "x@example.com"), 2, "--role")


async def test_provisioned_agents_get_their_queues_and_leave_other_rows_alone(
    cli: Path, db: Database, queues: None, database_settings: dict[str, Any]
) -> None:
    """`[[agents]]` get `rw` on their queues' groups at start; the file takes back only the
    rows it gave, never those of `pytrs users` (even for a login it takes over)."""
    added = pytrs(
        cli, "users", "add", "anna", "--email", "anna@example.com", "--role", "agent",
        "--queues", "Sales", "--password-stdin", stdin=b"correct horse\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    def agents(*entries: tuple[str, list[str]]) -> Any:
        return make_config(
            database_settings, queues=[{"name": "Sales"}], system_addresses=[], mail_accounts=[],
            auto_responses=[],
            agents=[{"login": login, "email": f"{login}@example.com", "queues": names}
                    for login, names in entries],
        )  # fmt: skip

    await provision(db, agents(("filed", ["Sales", "Misc"]), ("anna", ["Sales", "Misc"])))
    assert (await stored(db, "filed"))[1] == {(SALES, "rw"), (1, "rw")}
    assert (await stored(db, "anna"))[1] == {(SALES, "rw"), (1, "rw")}
    await provision(db, agents(("filed", ["Misc"])))
    assert (await stored(db, "filed"))[1] == {(1, "rw")}
    # The file gave anna Misc's group only; Sales' was `pytrs users`'s and stays.
    assert (await stored(db, "anna"))[1] == {(SALES, "rw")}
    await provision(db, agents())
    assert (await stored(db, "filed"))[1] == set()
    assert (await stored(db, "anna"))[1] == {(SALES, "rw")}
    await provision(db, agents(("filed", ["Sales"])))
    assert (await stored(db, "filed"))[1] == {(SALES, "rw")}
