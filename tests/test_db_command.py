"""`pytrs db check` compares columns, not just the revision; `db upgrade` and `db attach` refuse
the database of the other mode with one line; `config check` refuses what znuny mode cannot
run on."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import engine_name
from .test_cli import pytrs, write_config


def _url_and_schema(database_settings: dict[str, Any]) -> tuple[str, str]:
    return database_settings["url"], database_settings.get("schema", "")


async def _execute(database_settings: dict[str, Any], *statements: str) -> None:
    url, schema = _url_and_schema(database_settings)
    args = {"server_settings": {"search_path": schema}} if schema else {}
    engine = create_async_engine(url, connect_args=args)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_db_check_finds_a_column_dropped_behind_pytrs_back(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    assert pytrs(config, "db", "upgrade").returncode == 0
    assert pytrs(config, "db", "check").returncode == 0
    # A database stamped at head whose tables are not what the migrations made.
    await _execute(database_settings, "ALTER TABLE customer_user DROP COLUMN fax")
    checked = pytrs(config, "db", "check")
    assert checked.returncode == 1, checked.stdout
    assert b"customer_user" in checked.stderr and b"fax" in checked.stderr
    assert b"Traceback" not in checked.stderr


async def test_db_upgrade_refuses_a_znuny_database(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    # The tables by which a Znuny database is known, and no alembic_version.
    await _execute(
        database_settings,
        *(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)"
          for name in ("ticket", "article", "queue", "ticket_history")),
    )  # fmt: skip
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    refused = pytrs(config, "db", "upgrade")
    assert refused.returncode == 1
    lines = refused.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "Znuny" in lines[0] and "pytrs db attach" in lines[0]
    assert "pytrs import znuny" in lines[0]


def test_znuny_mode_is_refused_on_sqlite_and_db_upgrade_refuses_it(tmp_path: Path) -> None:
    sqlite = write_config(
        tmp_path / "sqlite.toml", {"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"},
        extra='',
    )  # fmt: skip
    text_ = sqlite.read_text().replace("[database]\n", '[database]\nmode = "znuny"\n', 1)
    sqlite.write_text(text_)
    checked = pytrs(sqlite, "config", "check")
    assert checked.returncode == 2
    assert b"database.mode" in checked.stderr and b"postgresql+asyncpg" in checked.stderr


async def test_attach_and_upgrade_refuse_the_other_mode(
    tmp_path: Path, database_settings: dict[str, Any]
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    attached = pytrs(config, "db", "attach")
    assert attached.returncode == 1 and b"pytrs db upgrade" in attached.stderr
    if engine_name() == "sqlite":
        return  # znuny mode needs PostgreSQL (refused by config check above)
    own = f"own_{secrets.token_hex(4)}"
    znuny = config.read_text().replace(
        "[database]\n", f'[database]\nmode = "znuny"\nown_schema = "{own}"\n', 1
    )
    config.write_text(znuny)
    upgraded = pytrs(config, "db", "upgrade")
    assert upgraded.returncode == 1 and b"pytrs db attach" in upgraded.stderr
    # No Znuny tables in the schema: attach says where it looked, and creates nothing.
    refused = pytrs(config, "db", "attach")
    assert refused.returncode == 3, refused.stderr
    assert b"no Znuny tables" in refused.stderr and b"Traceback" not in refused.stderr
