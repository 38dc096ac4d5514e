"""`pytrs tokens create|list|revoke`: the real command against the test database, and the
token it prints used against the real API app."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pytrs.cli import main
from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.schema import users_repo
from pytrs.schema.database import Database
from pytrs.schema.tables import api_token
from pytrs.web.app import create_app

from .test_cli import pytrs, write_config
from .test_cli_errors import one_line


@pytest.fixture
def cli(tmp_path: Path, database_settings: dict[str, Any]) -> Path:
    return write_config(tmp_path / "pytrs.toml", database_settings)


@pytest.fixture
async def agents(db: Database, config: Config) -> None:
    await provision(db, config)
    for login, admin in (("jdoe", False), ("boss", True)):
        new = users_repo.NewUser(login=login, email=f"{login}@example.com", pw="-", admin=admin,
                                 queues=("Support",))  # fmt: skip
        await users_repo.add(db, new)


async def _get_queues(config: Config, db: Database, token: str) -> httpx.Response:
    app = create_app(config, db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/api/v1/queues", headers={"Authorization": f"Bearer {token}"})


async def test_create_list_revoke(cli: Path, agents: None, db: Database, config: Config) -> None:
    made = pytrs(cli, "tokens", "create", "--user", "jdoe", "--name", "CI bot", "--scope", "read",
                 "--expires", "30")  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.decode().strip()
    assert token.startswith("pytrs_") and "\n" not in token
    note = made.stderr.decode()
    assert note.count("\n") == 1
    assert "keep it now" in note and "scope read" in note and "jdoe" in note
    async with db.connect() as conn:
        stored = (await conn.execute(select(api_token))).one()
    assert stored.token_hash != token and token not in stored.token_hash

    answer = await _get_queues(config, db, token)
    assert answer.status_code == 200 and {"Support"} <= {q["name"] for q in answer.json()}

    default = pytrs(cli, "tokens", "create", "--user", "boss", "--scope", "admin")
    assert default.returncode == 0, default.stderr
    listed = pytrs(cli, "tokens", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["user"], r["scope"], r["state"]) for r in rows] == [
        (stored.id, "jdoe", "read", "active"), (stored.id + 1, "boss", "admin", "active"),
    ]  # fmt: skip
    first = rows[0]
    assert first["name"] == "CI bot" and token.startswith(first["hint"])
    assert first["last_used"] is not None and first["revoked"] is None
    expires = datetime.fromisoformat(first["expires"].removesuffix("Z"))
    created = datetime.fromisoformat(first["created"].removesuffix("Z"))
    assert expires - created == timedelta(days=30)
    assert rows[1]["name"] == "admin token of boss" and rows[1]["expires"] is None
    only = json.loads(pytrs(cli, "tokens", "list", "--user", "boss", "--json").stdout)
    assert [r["user"] for r in only] == ["boss"]
    text = pytrs(cli, "tokens", "list").stdout.decode().splitlines()
    assert text[0].split()[:3] == ["ID", "USER", "NAME"] and text[1].endswith("active")
    assert token not in "\n".join(text)

    revoked = pytrs(cli, "tokens", "revoke", str(stored.id))
    assert revoked.returncode == 0 and f"revoked token {stored.id}" in revoked.stdout.decode()
    assert json.loads(pytrs(cli, "tokens", "list", "--json").stdout)[0]["state"] == "revoked"
    assert (await _get_queues(config, db, token)).status_code == 401


async def test_refusals(cli: Path, agents: None, db: Database) -> None:
    admin_for_agent = pytrs(cli, "tokens", "create", "--user", "jdoe", "--scope", "admin")
    one_line(admin_for_agent, 2, "not an administrator", "--scope write")
    assert admin_for_agent.stdout == b""
    nobody = pytrs(cli, "tokens", "create", "--user", "nobody")
    one_line(nobody, 1, "no such agent: nobody")
    await users_repo.disable(db, "jdoe")
    disabled = pytrs(cli, "tokens", "create", "--user", "jdoe")
    one_line(disabled, 1, "jdoe is disabled")
    missing = pytrs(cli, "tokens", "revoke", "999")
    one_line(missing, 1, "no token 999")
    assert json.loads(pytrs(cli, "tokens", "list", "--json").stdout) == []
    async with db.connect() as conn:
        assert (await conn.execute(select(api_token))).all() == []


@pytest.mark.parametrize(
    "words",
    [("create", "--user", "boss", "--expires", "0"), ("create", "--user", "boss", "--expires", "x"),
     ("create", "--user", "boss", "--scope", "root"), ("create",), ("revoke", "abc")],
)  # fmt: skip
def test_usage_errors(
    tmp_path: Path, words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused by the argument parser, in-process (no database is opened)."""
    config = write_config(tmp_path / "pytrs.toml", {"url": "sqlite+aiosqlite:///unused.db"})
    assert main(["--config", str(config), "tokens", *words]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pytrs: ") and err.count("\n") == 1 and "tokens" in err, err
