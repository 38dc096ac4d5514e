"""`pytrs inbox discard ID… --reason TEXT`: quarantined mail set aside for good, the reason,
who and when kept in the row's own columns and shown by `pytrs inbox show`; migration 0013
moves the JSON notes of rows discarded before it into those columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from pytrs.schema import inbox_repo, migrate
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox
from pytrs.vocabulary import znuny
from pytrs.vocabulary.inbox import InboxItem

from .helpers import make_mail
from .test_cli import pytrs, write_config


async def _stored(db: Database, subject: str, state: str = inbox_repo.QUARANTINED) -> int:
    async with db.transaction() as conn:
        [row_id] = await inbox_repo.store(
            conn, [InboxItem("pipe", make_mail(subject=subject), recipient="support@example.com")]
        )
        await conn.execute(
            update(inbox).where(inbox.c.id == row_id)
            .values(state=state, attempts=5, last_error="ValueError: broken")
        )  # fmt: skip
    return row_id


async def _row(db: Database, row_id: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(inbox).where(inbox.c.id == row_id))).one()


async def test_discard_keeps_the_row_with_its_reason(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    first, second = await _stored(db, "spam one"), await _stored(db, "spam two")
    done = pytrs(config, "inbox", "discard", str(first), str(second), "--reason", "spam,\n again")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"2 message(s) discarded\n" and done.stderr == b""
    row = await _row(db, first)
    assert (row.state, row.discard_reason, row.discarded_by) == (
        inbox_repo.DISCARDED, "spam, again", znuny.USER_ROOT,
    )  # fmt: skip
    assert row.discarded_at is not None and row.raw is not None and row.trace is None
    shown = pytrs(config, "inbox", "show", str(first)).stdout.decode()
    assert "state: discarded" in shown and "discard reason: spam, again" in shown
    assert f"discarded: {row.discarded_at} by root@localhost" in shown
    listed = json.loads(pytrs(config, "inbox", "list", "--state", "discarded", "--json").stdout)
    assert sorted(r["id"] for r in listed) == [first, second]
    assert {r["discard_reason"] for r in listed} == {"spam, again"}


async def test_only_quarantined_rows_are_discarded(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    held, pending = await _stored(db, "held"), await _stored(db, "new", inbox_repo.PENDING)
    mixed = pytrs(config, "inbox", "discard", str(held), str(pending), "424242", "--reason", "x")
    assert mixed.returncode == 1 and mixed.stdout == b"1 message(s) discarded\n"
    assert mixed.stderr.decode().splitlines() == [
        f"inbox {pending}: is pending, not quarantined: nothing to discard",
        "inbox 424242: no such row",
    ]
    assert (await _row(db, pending)).state == inbox_repo.PENDING
    again = pytrs(config, "inbox", "discard", str(held), "--reason", "twice")
    assert again.returncode == 1
    assert f"inbox {held}: is discarded, not quarantined".encode() in again.stderr
    assert (await _row(db, held)).discard_reason == "x"  # the first reason stays


async def test_a_reason_is_required(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    config = write_config(tmp_path / "pytrs.toml", database_settings)
    held = await _stored(db, "held")
    missing = pytrs(config, "inbox", "discard", str(held))
    assert missing.returncode == 2 and b"--reason" in missing.stderr
    blank = pytrs(config, "inbox", "discard", str(held), "--reason", "  ")
    assert blank.returncode == 2
    assert blank.stderr.decode().strip().splitlines() == ["pytrs: inbox discard: give a reason"]
    long = pytrs(config, "inbox", "discard", str(held), "--reason", "y" * 501)
    assert long.returncode == 2 and b"longer than 500 characters" in long.stderr
    assert (await _row(db, held)).state == inbox_repo.QUARANTINED


async def test_migration_moves_the_json_notes_into_the_columns(db: Database) -> None:
    held = await _stored(db, "old discard")
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: _migrate(c, "downgrade", "0012"))
        note = {"discarded": {"reason": "old spam", "by": "root@localhost",
                              "at": "2026-12-01 10:00:00"}}  # fmt: skip
        await conn.execute(
            text("UPDATE inbox_message SET state = 'discarded', trace = :t WHERE id = :i"),
            {"t": json.dumps(note), "i": held},
        )
    await migrate.upgrade(db)
    row = await _row(db, held)
    assert (row.discard_reason, row.discarded_by, str(row.discarded_at), row.trace) == (
        "old spam", znuny.USER_ROOT, "2026-12-01 10:00:00", None,
    )  # fmt: skip
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: _migrate(c, "downgrade", "0012"))
        trace = await conn.execute(text(f"SELECT trace FROM inbox_message WHERE id = {held}"))
        assert json.loads(trace.scalar_one()) == note
    await migrate.upgrade(db)
    assert await migrate.diff_models(db) == []


def _migrate(conn: object, action: str, revision: str) -> None:
    from alembic import command

    getattr(command, action)(migrate.alembic_config(conn), revision)
