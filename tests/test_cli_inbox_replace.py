"""`pytrs inbox replace ID FILE` and `pytrs inbox edit ID`: a corrected copy of a quarantined
mail goes back in the queue and a worker turns it into a ticket, while the mail as received
stays kept with the row (`inbox show --original`); migration 0016 adds the columns.

The quarantine is a real one: a database trigger refuses the article of a mail whose subject
says POISON (as in tests/test_quarantine.py), the worker retries it until it is quarantined,
and the trigger is still there when the corrected copy, without the word, is processed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo, migrate
from pytrs.schema.database import Database
from pytrs.schema.tables import inbox
from pytrs.vocabulary import znuny
from pytrs.vocabulary.inbox import InboxItem

from .conftest import wait_until
from .helpers import articles, inbox_states, make_mail, tickets
from .test_cli import pytrs, write_config
from .test_quarantine import _install_poison


async def _worker(config: Config, db: Database) -> PostmasterWorker:
    await provision(db, config)
    addresses = AddressBook()
    await addresses.reload(db)
    return PostmasterWorker(config, db, addresses)


async def _quarantine(worker: PostmasterWorker, db: Database, cli: Path, raw: bytes) -> int:
    """`raw` delivered through `pytrs deliver` and retried by the worker until quarantined."""
    delivered = pytrs(cli, "deliver", "--recipient", "support@example.com", stdin=raw)
    assert delivered.returncode == 0, delivered.stderr

    async def quarantined() -> bool:
        await worker.run_once()
        return (await inbox_states(db)).get(inbox_repo.QUARANTINED) == 1

    await wait_until(quarantined, within=20)
    async with db.connect() as conn:
        held = select(inbox.c.id).where(inbox.c.state == inbox_repo.QUARANTINED)
        return int((await conn.execute(held)).scalar_one())


async def _row(db: Database, row_id: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(inbox).where(inbox.c.id == row_id))).one()


def _pytrs_env(config: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[bytes]:
    """`pytrs` with exactly the editor variables of `environ` (none of the caller's)."""
    (config.parent / "edits").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VISUAL", "EDITOR")}
    env = {k: v for k, v in env.items() if not k.startswith("PYTRS_")} | environ
    # The temporary copies go where the test can check that none is left.
    env["TMPDIR"] = str(config.parent / "edits")
    return subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(config), *args],
        capture_output=True, timeout=60, env=env, check=False,
    )  # fmt: skip


def _editor(path: Path, script: str) -> str:
    """A small editor: a shell script run on the file named by its last argument."""
    path.write_text(f'#!/bin/sh\nfile="$1"\n{script}\n')
    path.chmod(0o755)
    return str(path)


async def test_a_replaced_mail_becomes_a_ticket_and_the_original_stays(
    tmp_path: Path, config: Config, database_settings: dict[str, Any], db: Database
) -> None:
    cli = write_config(tmp_path / "pytrs.toml", database_settings)
    worker = await _worker(config, db)
    await _install_poison(db)
    received = make_mail(subject="POISON pill", message_id="<pill@customer.example>")
    held = await _quarantine(worker, db, cli, received)
    before = await _row(db, held)
    assert before.raw == received and before.original_raw is None

    fixed = received.replace(b"Subject: POISON pill", b"Subject: Fixed pill")
    (tmp_path / "fixed.eml").write_bytes(fixed)
    done = pytrs(cli, "inbox", "replace", str(held), str(tmp_path / "fixed.eml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == f"inbox {held}: replaced and re-queued (the original is kept)\n"
    row = await _row(db, held)
    assert (row.state, row.attempts, row.raw, row.original_raw) == (
        inbox_repo.PENDING, 0, fixed, received,
    )  # fmt: skip
    assert row.replaced_by == znuny.USER_ROOT and row.replaced_at is not None
    # The row keeps the key of the mail as received (see inbox_admin.replace).
    assert row.dedup_key == before.dedup_key and row.message_id == "<pill@customer.example>"

    await worker.drain()
    assert await inbox_states(db) == {"done": 1}
    assert [t["title"] for t in await tickets(db)] == ["Fixed pill"]
    assert [a["a_subject"] for a in await articles(db)] == ["Fixed pill"]
    row = await _row(db, held)
    assert row.raw is None and row.original_raw == received  # the article keeps the copy

    shown = pytrs(cli, "inbox", "show", str(held)).stdout.decode()
    assert f"replaced: {row.replaced_at} by root@localhost (a corrected copy)" in shown
    assert f"original: {len(received)} bytes kept" in shown
    original = pytrs(cli, "inbox", "show", str(held), "--original")
    assert original.returncode == 0 and original.stdout == received
    assert pytrs(cli, "inbox", "show", str(held), "--raw").stdout.replace(b"\r\n", b"\n") == (
        fixed.replace(b"\r\n", b"\n")
    )

    # The sender's MTA delivers the broken mail again: the row's key recognises it.
    again = pytrs(cli, "deliver", "--recipient", "support@example.com", stdin=received)
    assert again.returncode == 0 and await inbox_states(db) == {"done": 1}
    refused = pytrs(cli, "inbox", "replace", str(held), str(tmp_path / "fixed.eml"))
    assert refused.returncode == 1 and refused.stdout == b""
    assert refused.stderr.decode().splitlines() == [
        f"pytrs: inbox {held}: is done, not quarantined: nothing to replace"
    ]


async def _stored(db: Database, raw: bytes, state: str = inbox_repo.QUARANTINED) -> int:
    async with db.transaction() as conn:
        [row_id] = await inbox_repo.store(
            conn, [InboxItem("pipe", raw, recipient="support@example.com")]
        )
        await conn.execute(update(inbox).where(inbox.c.id == row_id).values(state=state))
    return row_id


async def test_a_second_replace_keeps_the_first_original(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    cli = write_config(tmp_path / "pytrs.toml", database_settings)
    received = make_mail(subject="first")
    held = await _stored(db, received)
    for subject in ("second", "third"):
        (tmp_path / "copy.eml").write_bytes(make_mail(subject=subject))
        done = pytrs(cli, "inbox", "replace", str(held), str(tmp_path / "copy.eml"))
        assert done.returncode == 0, done.stderr
        async with db.transaction() as conn:  # the copy failed too
            await conn.execute(
                update(inbox).where(inbox.c.id == held).values(state=inbox_repo.QUARANTINED)
            )
    row = await _row(db, held)
    assert row.original_raw == received and b"Subject: third" in row.raw
    from_stdin = pytrs(cli, "inbox", "replace", str(held), "-", stdin=make_mail(subject="4th"))
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert b"Subject: 4th" in (await _row(db, held)).raw


async def test_replace_refuses_other_rows_and_what_is_not_mail(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    cli = write_config(tmp_path / "pytrs.toml", database_settings)
    pending = await _stored(db, make_mail(subject="new"), inbox_repo.PENDING)
    held = await _stored(db, make_mail(subject="held"))
    good = tmp_path / "good.eml"
    good.write_bytes(make_mail(subject="good"))
    (tmp_path / "junk.txt").write_bytes(b"\x00\x01 this is not mail\n")
    cases = {
        (str(pending), str(good)): f"inbox {pending}: is pending, not quarantined: nothing to "
        "replace",
        ("424242", str(good)): "inbox 424242: no such row",
        (str(held), str(tmp_path / "junk.txt")): f"inbox replace {held}: not a mail to queue: "
        "input does not start with a mail header",
        (str(held), str(tmp_path / "missing.eml")): f"inbox replace {held}: cannot read "
        f"{tmp_path / 'missing.eml'}: No such file or directory",
    }
    for (row_id, path), line in cases.items():
        refused = pytrs(cli, "inbox", "replace", row_id, path)
        assert refused.returncode == 1 and refused.stdout == b""
        assert refused.stderr.decode().splitlines() == [f"pytrs: {line}"]
    assert (await _row(db, pending)).original_raw is None
    assert (await _row(db, held)).state == inbox_repo.QUARANTINED


async def test_edit_runs_the_editor_on_a_copy(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    cli = write_config(tmp_path / "pytrs.toml", database_settings)
    received = make_mail(subject="Broken subject")
    held = await _stored(db, received)
    fix = _editor(tmp_path / "fix", "sed -i 's/Broken subject/Mended subject/' \"$file\"")
    empty = _editor(tmp_path / "empty", ': > "$file"')

    nothing = _pytrs_env(cli, "inbox", "edit", str(held), EDITOR="true")
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.decode() == f"inbox {held}: nothing changed, not re-queued\n"
    no_editor = _pytrs_env(cli, "inbox", "edit", str(held))
    assert no_editor.returncode == 2
    assert no_editor.stderr.decode().splitlines() == [
        "pytrs: inbox edit: set VISUAL or EDITOR to the editor to run"
    ]
    failed = _pytrs_env(cli, "inbox", "edit", str(held), VISUAL="false")
    assert failed.returncode == 1
    assert failed.stderr.decode().splitlines() == [
        "pytrs: inbox edit: false exited with status 1: not re-queued"
    ]
    emptied = _pytrs_env(cli, "inbox", "edit", str(held), EDITOR=empty)
    assert emptied.returncode == 1 and b"the edited mail is empty: not re-queued" in emptied.stderr
    row = await _row(db, held)
    assert (row.state, row.raw, row.original_raw) == (inbox_repo.QUARANTINED, received, None)

    # VISUAL is preferred to EDITOR, as everywhere.
    edited = _pytrs_env(cli, "inbox", "edit", str(held), VISUAL=fix, EDITOR="false")
    assert edited.returncode == 0, edited.stderr
    assert (
        edited.stdout.decode() == f"inbox {held}: replaced and re-queued (the original is kept)\n"
    )
    row = await _row(db, held)
    assert row.state == inbox_repo.PENDING and row.original_raw == received
    assert row.raw == received.replace(b"Broken subject", b"Mended subject")
    again = _pytrs_env(cli, "inbox", "edit", str(held), VISUAL=fix)
    assert again.returncode == 1
    assert again.stderr.decode().splitlines() == [
        f"pytrs: inbox {held}: is pending, not quarantined: nothing to edit"
    ]
    assert os.listdir(tmp_path / "edits") == []  # no copy left behind


async def test_migration_0016_adds_and_drops_the_columns(db: Database) -> None:
    held = await _stored(db, make_mail(subject="kept"))
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: _migrate(c, "downgrade", "0015"))
    await migrate.upgrade(db)
    row = await _row(db, held)
    assert row.state == inbox_repo.QUARANTINED and row.original_raw is None
    assert await migrate.diff_models(db) == []


def _migrate(conn: Connection, action: str, revision: str) -> None:
    from alembic import command

    getattr(command, action)(migrate.alembic_config(conn), revision)
