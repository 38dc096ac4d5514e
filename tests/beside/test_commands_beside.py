"""`pytrs users` and `pytrs filters import` beside Znuny, as an admin runs them: an agent's
address lands in Znuny's UserEmail preference, and a filter value longer than Znuny's
f_value holds is refused with one clear answer, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from ..test_cli import pytrs
from ..znuny.fixtures import ZnunyDatabase

pytestmark = pytest.mark.znuny


def _config(path: Path, znuny: ZnunyDatabase) -> Path:
    lines = ["[database]"] + [f'{key} = "{value}"' for key, value in znuny.settings().items()]
    lines += ["[smtp]", 'listen = ["127.0.0.1:0"]', "[web]", 'listen = ""']
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_users_and_filters_commands_beside_znuny(
    tmp_path: Path, znuny_postgresql: ZnunyDatabase
) -> None:
    config = _config(tmp_path / "pytrs.toml", znuny_postgresql)
    assert pytrs(config, "db", "attach").returncode == 0

    added = pytrs(
        config, "users", "add", "ann", "--email", "Ann@Example.com", "--role", "agent",
        "--queues", "Raw", "--password-stdin", stdin=b"correct horse battery staple\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr.decode()
    listed = pytrs(config, "users", "list", "--json")
    assert listed.returncode == 0, listed.stderr.decode()
    [ann] = [u for u in json.loads(listed.stdout) if u["login"] == "ann"]
    assert ann["email"] == "ann@example.com"
    async with znuny_postgresql.engine.connect() as conn:
        stored = await conn.execute(
            text(
                "SELECT p.preferences_value FROM user_preferences p JOIN users u "
                "ON u.id = p.user_id WHERE u.login = 'ann' AND p.preferences_key = 'UserEmail'"
            )
        )
        assert [r[0] for r in stored] == ["ann@example.com"]

    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[filters]]\nname = "010-long"\n'
        f'match = [ {{ header = "Subject", value = "{"a" * 201}" }} ]\n'
        'set = [ { header = "X-PyTRS-Queue", value = "Misc" } ]\n'
    )
    refused = pytrs(config, "filters", "import", str(rules))
    assert refused.returncode == 1
    errors = refused.stderr.decode()
    assert "match[0].value" in errors and "200" in errors and "Traceback" not in errors
    async with znuny_postgresql.engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM postmaster_filter"))
    assert count == 0
