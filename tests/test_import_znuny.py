"""`pytrs import znuny`: a generated Znuny 7.0 installation copied into pytrs's database.

The source is helper zschema's Znuny-shaped database (`tests/znuny/`: Znuny's tables, its
initial rows and `populate`'s generated tickets) on PostgreSQL (bodies as base64 TEXT) and,
when the driver is installed, MariaDB (raw LONGBLOBs); the target is the test database
(SQLite, or PostgreSQL with PYTRS_TEST_DATABASE_URL). Every article's raw mail and every
attachment is compared byte for byte with the source, decoded here independently of the
importer's reader.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pytrs.config import Config
from pytrs.config.model import DatabaseConfig
from pytrs.gateway.addresses import AddressBook
from pytrs.importers import mapping, setup_rows
from pytrs.importers.report import Progress, Summary
from pytrs.importers.znuny import ImportOptions, ImportRefused, import_znuny
from pytrs.importers.znuny_source import UnreadableBlob, blob_tables
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.routing.ticket_number import checksum_digit, make_generator
from pytrs.schema import inbox_repo, tables
from pytrs.schema.database import Database, create_database
from pytrs.schema.escalation_due import CLOCK_COLUMNS
from pytrs.tickets.escalation import ESCALATED, KINDS, Clock, due_events
from pytrs.vocabulary.inbox import InboxItem

from .conftest import wait_until
from .helpers import make_mail
from .test_cli import pytrs, write_config
from .znuny.fixtures import ZnunyDatabase
from .znuny.generate import populate

pytestmark = pytest.mark.znuny

TICKETS = 300
GENERATOR = make_generator("DateChecksum")


def _source(znuny: ZnunyDatabase) -> Database:
    schema = znuny.schema if znuny.kind == "postgresql" else ""
    return create_database(DatabaseConfig(url=znuny.url, schema=schema), pool=False)


async def _import(db: Database, znuny: ZnunyDatabase, **options: Any) -> Summary:
    source = _source(znuny)
    try:
        return await import_znuny(db, source, ImportOptions(numbers=GENERATOR, **options))
    finally:
        await source.close()


def _decoded(znuny: ZnunyDatabase, value: str | bytes | None) -> bytes:
    """A blob as the source means it (our own decoding, not the importer's)."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except ValueError:  # Znuny's welcome article: stored unencoded
        return value.encode()


async def _source_blobs(
    znuny: ZnunyDatabase,
) -> tuple[dict[str, bytes], dict[tuple[str, str], bytes]]:
    """Raw mail per (ticket number, article position) and attachments per (…, file name)."""
    plain: dict[str, bytes] = {}
    files: dict[tuple[str, str], bytes] = {}
    async with znuny.engine.connect() as conn:
        query = text(
            "SELECT t.tn, a.id, p.body FROM ticket t JOIN article a ON a.ticket_id = t.id "
            "JOIN article_data_mime_plain p ON p.article_id = a.id ORDER BY a.id"
        )
        for tn, article_id, body in await conn.execute(query):
            plain[f"{tn}/{article_id}"] = _decoded(znuny, body)
        query = text(
            "SELECT t.tn, a.id, f.filename, f.content FROM ticket t JOIN article a ON "
            "a.ticket_id = t.id JOIN article_data_mime_attachment f ON f.article_id = a.id"
        )
        for tn, article_id, name, content in await conn.execute(query):
            files[(f"{tn}/{article_id}", name)] = _decoded(znuny, content)
    return plain, files


async def _target_blobs(db: Database) -> tuple[dict[str, bytes], dict[tuple[str, str], bytes]]:
    t, a, p, f = (
        tables.ticket,
        tables.article,
        tables.article_data_mime_plain,
        tables.article_data_mime_attachment,
    )
    async with db.connect() as conn:
        rows = await conn.execute(
            select(t.c.tn, a.c.id, p.c.body)
            .join(a, a.c.ticket_id == t.c.id)
            .join(p, p.c.article_id == a.c.id)
        )
        plain = {f"{tn}/{aid}": bytes(body) for tn, aid, body in rows}
        rows = await conn.execute(
            select(t.c.tn, a.c.id, f.c.filename, f.c.content)
            .join(a, a.c.ticket_id == t.c.id)
            .join(f, f.c.article_id == a.c.id)
        )
        files = {(f"{tn}/{aid}", name): bytes(content) for tn, aid, name, content in rows}
    return plain, files


async def _count(engine_or_db: AsyncEngine | Database, table: str) -> int:
    engine = engine_or_db.engine if isinstance(engine_or_db, Database) else engine_or_db
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


@pytest.fixture
async def znuny(znuny_postgresql: ZnunyDatabase) -> ZnunyDatabase:
    await populate(znuny_postgresql.engine, tickets=TICKETS)
    return znuny_postgresql


async def test_import_copies_everything_and_a_second_run_nothing(
    db: Database, znuny: ZnunyDatabase
) -> None:
    tickets_before = await _count(db, "ticket")
    summary = await _import(db, znuny, batch=50)
    source_tickets = await _count(znuny.engine, "ticket")
    assert summary.copied["tickets"] + summary.present["tickets"] == source_tickets
    assert await _count(db, "ticket") == tickets_before + summary.copied["tickets"]
    # Byte for byte: every raw mail and attachment the source has; nothing was skipped.
    assert summary.skips == [], summary.lines()
    source_plain, source_files = await _source_blobs(znuny)
    target_plain, target_files = await _target_blobs(db)
    assert len(source_plain) > TICKETS and len(source_files) > 50
    assert target_plain == source_plain
    assert target_files == source_files
    assert any(b"\x00" in content for content in target_files.values())  # binary ones too
    assert summary.copied["articles"] == await _count(znuny.engine, "article")
    # History as Znuny recorded it, plus one "imported" entry per ticket.
    source_history = await _count(znuny.engine, "ticket_history")
    assert summary.copied["history entries"] == source_history
    assert await _count(db, "ticket_history") >= source_history + summary.copied["tickets"]
    assert summary.copied["links"] == await _count(znuny.engine, "link_relation") > 0
    filters = await _scalar(znuny.engine, "SELECT count(DISTINCT f_name) FROM postmaster_filter")
    assert summary.copied["postmaster filters"] == filters > 0
    responses = summary.copied["auto responses"] + summary.present["auto responses"]
    assert responses == await _count(znuny.engine, "auto_response")
    assert summary.copied["agents"] > 0 and summary.copied["queues"] > 0
    # Agents' addresses from Znuny's preferences (bytes on MySQL, text on PostgreSQL).
    query = (
        "SELECT u.login, p.preferences_value FROM users u JOIN user_preferences p "
        "ON p.user_id = u.id WHERE p.preferences_key = 'UserEmail' AND u.id > 1"
    )  # root@localhost (1) is pytrs's own: already there
    async with znuny.engine.connect() as conn:
        wanted = {
            (login, value if isinstance(value, str) else value.decode())
            for login, value in await conn.execute(text(query))
        }
    async with db.connect() as conn:
        have = set(await conn.execute(select(tables.users.c.login, tables.users.c.email)))
    assert wanted and wanted <= have

    assert await _history_names(znuny.engine) == await _history_names(db.engine, imported=False)
    assert await _field_values(znuny.engine) == await _field_values(db.engine)
    await _responses_match(db, znuny)

    again = await _import(db, znuny, batch=50)
    assert sum(again.copied.values()) == 0, again.lines()
    assert again.present["tickets"] == source_tickets


async def _history_names(engine: AsyncEngine, imported: bool = True) -> dict[str, list[str]]:
    """Each ticket's history (type and name, in order), by ticket number."""
    query = text(
        "SELECT t.tn, ht.name, h.name FROM ticket_history h JOIN ticket t ON t.id = h.ticket_id "
        "JOIN ticket_history_type ht ON ht.id = h.history_type_id ORDER BY h.id"
    )
    found: dict[str, list[str]] = {}
    async with engine.connect() as conn:
        for tn, kind, name in await conn.execute(query):
            if imported or name != "%%Imported from Znuny":
                found.setdefault(tn, []).append(f"{kind} {name}")
    return found


async def _field_values(engine: AsyncEngine) -> set[tuple[str, str, str]]:
    """Ticket dynamic field values as (ticket number, field name, value)."""
    query = text(
        "SELECT t.tn, f.name, v.value_text, v.value_int, v.value_date FROM dynamic_field_value v "
        "JOIN dynamic_field f ON f.id = v.field_id JOIN ticket t ON t.id = v.object_id "
        "WHERE f.object_type = 'Ticket'"
    )
    async with engine.connect() as conn:
        return {
            (tn, name, str((text_, number, str(day)[:19] if day else None)))
            for tn, name, text_, number, day in await conn.execute(query)
        }


async def _responses_match(db: Database, znuny: ZnunyDatabase) -> None:
    """Each response's texts as translated, its sender address and its queues."""
    query = text(
        "SELECT r.name, r.text0, r.text1, r.content_type, s.value0, q.name FROM auto_response r "
        "JOIN system_address s ON s.id = r.system_address_id LEFT JOIN queue_auto_response qr "
        "ON qr.auto_response_id = r.id LEFT JOIN queue q ON q.id = qr.queue_id"
    )
    async with znuny.engine.connect() as conn:
        source = {
            (
                name,
                setup_rows.translate(body, kind)[0],
                setup_rows.translate(subject, "text/plain")[0],
                address,
                queue,
            )
            for name, body, subject, kind, address, queue in await conn.execute(query)
        }
    async with db.connect() as conn:
        here = {
            (name, body, subject, address, queue)
            for name, body, subject, _, address, queue in await conn.execute(query)
        }
    assert source and source <= here
    assert not any("OTRS_" in f"{body}{subject}" for _, body, subject, _, _ in here)
    assert any("{{" in body for _, body, _, _, _ in here)  # tags became pytrs's template values


async def _scalar(engine: AsyncEngine, query: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(query)) or 0)


async def test_dry_run_reports_and_writes_nothing(db: Database, znuny: ZnunyDatabase) -> None:
    counts = {name: await _count(db, name) for name in ("ticket", "article", "queue", "users")}
    summary = await _import(db, znuny, dry_run=True)
    assert summary.dry_run and summary.copied["tickets"] == await _count(znuny.engine, "ticket")
    assert "dry run: nothing was written" in summary.lines()
    assert counts == {name: await _count(db, name) for name in counts}


async def test_skips_are_named_with_their_reason(
    tmp_path: Path, database_settings: dict[str, Any], db: Database, znuny: ZnunyDatabase
) -> None:
    async with znuny.engine.begin() as conn:
        article_id = await conn.scalar(
            text("SELECT min(article_id) FROM article_data_mime_plain WHERE article_id > 1")
        )
        await conn.execute(
            text("DELETE FROM article_data_mime_plain WHERE article_id = :a"), {"a": article_id}
        )
        await conn.execute(
            text(
                "INSERT INTO postmaster_filter (f_name, f_stop, f_type, f_key, f_value, f_not) "
                "VALUES ('zz-lookbehind', 0, 'Match', 'Subject', '(?<=x)y', 0), "
                "('zz-lookbehind', 0, 'Set', 'X-OTRS-Ignore', 'yes', 0)"
            )
        )
        biggest = await conn.scalar(text("SELECT max(id) FROM article_data_mime_attachment"))
    # The command: a dry run with skips is exit 1, the summary on stdout names each.
    cli = write_config(tmp_path / "pytrs.toml", database_settings)
    dry = pytrs(cli, "import", "znuny", znuny.url, "--schema", znuny.schema, "--dry-run")
    assert dry.returncode == 1, dry.stderr
    out = dry.stdout.decode()
    assert "  postmaster filters zz-lookbehind: " in out and "dry run: nothing was written" in out
    assert f"article {article_id}: not in the database" in out
    assert await _count(db, "ticket") == 0

    summary = await _import(db, znuny, max_attachment_bytes=10)
    reasons = [str(s) for s in summary.skips]
    assert any(f"article {article_id}: not in the database" in r for r in reasons), reasons
    assert any(r.startswith("postmaster filters zz-lookbehind: ") for r in reasons), reasons
    if biggest is not None:
        assert any("over the limit of 10" in r for r in reasons), reasons
    assert any("skipped (" in line for line in summary.lines())


async def test_imported_rows_survive_provisioning_and_new_mail_is_numbered_after_znuny(
    db: Database, config: Config, znuny: ZnunyDatabase
) -> None:
    today = datetime.now(UTC).date()
    base = f"{today:%Y%m%d}{GENERATOR.system_id}{700:05d}"
    last = base + str(checksum_digit(base))
    async with znuny.engine.begin() as conn:
        newest = await conn.scalar(text("SELECT max(id) FROM ticket"))
        await conn.execute(
            text("UPDATE ticket SET tn = :tn WHERE id = :id"), {"tn": last, "id": newest}
        )
        queue_name = await conn.scalar(text("SELECT name FROM queue WHERE id > 4 ORDER BY id"))
    await _import(db, znuny)
    await provision(db, config)  # what a daemon start does first
    async with db.connect() as conn:
        names = set(await conn.scalars(select(tables.queue.c.name)))
    assert queue_name is not None and queue_name in names

    addresses = AddressBook()
    await addresses.reload(db)
    worker = PostmasterWorker(config, db, addresses)
    async with db.transaction() as conn:
        await inbox_repo.store(
            conn,
            [
                InboxItem(
                    "pipe", make_mail(subject="after the move"), recipient="support@example.com"
                )
            ],
        )
    await worker.drain()
    async with db.connect() as conn:
        numbers = list(
            await conn.scalars(
                select(tables.ticket.c.tn).where(tables.ticket.c.title == "after the move")
            )
        )
    assert len(numbers) == 1 and numbers[0].startswith(f"{today:%Y%m%d}10")
    assert int(numbers[0][10:-1]) > 700


async def test_ids_taken_by_pytrs_tickets_are_renumbered(
    db: Database, config: Config, znuny: ZnunyDatabase
) -> None:
    """pytrs made tickets of its own before the import: Znuny's tickets with the same ids get
    new ones, and their articles, history, values and links follow them."""
    addresses = AddressBook()
    await provision(db, config)
    await addresses.reload(db)
    worker = PostmasterWorker(config, db, addresses)
    async with db.transaction() as conn:
        mails = [make_mail(subject=f"before {n}") for n in range(3)]
        items = [InboxItem("pipe", raw, recipient="support@example.com") for raw in mails]
        await inbox_repo.store(conn, items)
    await worker.drain()
    own = await _count(db, "ticket")
    assert own == 3
    # One Znuny ticket has the number pytrs gave one of its own (the same generator and
    # system id on one day): it is not mistaken for a copy, nor copied over it.
    async with db.connect() as conn:
        taken = await conn.scalar(select(func.min(tables.ticket.c.tn)))
    async with znuny.engine.begin() as conn:
        await conn.execute(
            text("UPDATE ticket SET tn = :tn WHERE id = (SELECT max(id) FROM ticket)"),
            {"tn": taken},
        )
    rehearsal = await _import(db, znuny, batch=40, dry_run=True)  # renumbers too, then rolls back
    assert rehearsal.copied["tickets"] == await _count(znuny.engine, "ticket") - 1
    assert await _count(db, "ticket") == own
    summary = await _import(db, znuny, batch=40)
    assert summary.copied["tickets"] == await _count(znuny.engine, "ticket") - 1
    [clash] = [str(skip) for skip in summary.skips if skip.kind == "tickets"]
    assert clash.startswith(f"tickets {taken}: another ticket here has this number (created ")
    assert await _count(db, "ticket") == own + summary.copied["tickets"]
    by_number = await _bodies_by_number(db)
    async with znuny.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT t.tn, p.body FROM ticket t JOIN article a ON a.ticket_id = t.id "
                "JOIN article_data_mime_plain p ON p.article_id = a.id ORDER BY a.id"
            )
        )
        source: dict[str, list[bytes]] = {}
        for tn, body in rows:
            source.setdefault(tn, []).append(_decoded(znuny, body))
    del source[taken]
    assert {tn: by_number[tn] for tn in source} == source
    async with db.connect() as conn:
        moved = await conn.scalar(
            select(tables.ticket.c.id).where(tables.ticket.c.tn == next(iter(source)))
        )
        history = await conn.scalar(
            select(func.count())
            .select_from(tables.ticket_history)
            .where(tables.ticket_history.c.ticket_id == moved)
        )
        links = await conn.scalar(select(func.count()).select_from(tables.link_relation))
    assert history and history > 1
    assert links + summary.skipped("links") == await _count(znuny.engine, "link_relation")


async def _bodies_by_number(db: Database) -> dict[str, list[bytes]]:
    t, a, p = tables.ticket, tables.article, tables.article_data_mime_plain
    query = (
        select(t.c.tn, p.c.body)
        .join(a, a.c.ticket_id == t.c.id)
        .join(p, p.c.article_id == a.c.id)
        .order_by(a.c.id)
    )
    found: dict[str, list[bytes]] = {}
    async with db.connect() as conn:
        for tn, body in await conn.execute(query):
            found.setdefault(tn, []).append(bytes(body))
    return found


async def test_a_killed_import_resumes_where_it_stopped(
    tmp_path: Path, database_settings: dict[str, Any], db: Database, znuny: ZnunyDatabase
) -> None:
    cli = write_config(tmp_path / "pytrs.toml", database_settings)
    args = [
        sys.executable,
        "-m",
        "pytrs",
        "--config",
        str(cli),
        "import",
        "znuny",
        znuny.url,
        "--schema",
        znuny.schema,
        "--batch",
        "2",  # 150 transactions: killed well before the last one
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTRS_")}
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_until(lambda: _count(db, "ticket"), within=60)
        await wait_until(lambda: _more_than(db, 10), within=60)
    finally:
        process.send_signal(signal.SIGKILL)  # in the middle of the copy: no clean-up
        await process.wait()
    stopped_at = await _count(db, "ticket")
    assert 0 < stopped_at < await _count(znuny.engine, "ticket")
    finished = pytrs(cli, "import", "znuny", znuny.url, "--schema", znuny.schema, "--json")
    assert finished.returncode == 0, finished.stderr  # nothing skipped
    document = json.loads(finished.stdout)
    assert document["kinds"]["tickets"]["already_there"] == stopped_at
    assert await _count(db, "ticket") == await _count(znuny.engine, "ticket")
    plain, _ = await _target_blobs(db)
    source_plain, _ = await _source_blobs(znuny)
    assert plain == source_plain
    assert b"tickets: " in finished.stderr  # progress lines (stderr is not a terminal here)


async def _more_than(db: Database, n: int) -> bool:
    return await _count(db, "ticket") > n


async def test_cli_refuses_what_is_not_znuny_in_one_line(
    tmp_path: Path, database_settings: dict[str, Any], db: Database
) -> None:
    cli = write_config(tmp_path / "pytrs.toml", database_settings)
    target_url = database_settings["url"]
    wrong = pytrs(
        cli,
        "import",
        "znuny",
        target_url,
        *(["--schema", database_settings["schema"]] if "schema" in database_settings else []),
    )
    assert wrong.returncode == 1 and len(wrong.stderr.splitlines()) == 1, wrong.stderr
    assert b"is this Znuny's database" in wrong.stderr
    beside = {"PYTRS_DATABASE_MODE": "znuny", "PYTRS_DATABASE_URL": "postgresql+asyncpg://z@h/z"}
    refused = pytrs(cli, "import", "znuny", target_url, environ=beside)
    assert refused.returncode == 2 and b'mode = "pytrs"' in refused.stderr, refused.stderr
    bad = pytrs(cli, "import", "znuny", "not a url")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
    down = pytrs(cli, "import", "znuny", "postgresql+asyncpg://nobody@127.0.0.1:1/znuny")
    assert down.returncode == 3 and len(down.stderr.splitlines()) == 1, down.stderr
    assert down.stderr.startswith(b"pytrs: import znuny: cannot open Znuny's database ")
    driverless = pytrs(cli, "import", "znuny", "oracle+nosuchdriver://znuny@db/znuny")
    assert driverless.returncode == 2 and b"no driver for" in driverless.stderr
    missing = pytrs(cli, "import", "znuny", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 3 and b"no Znuny database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()


async def test_mariadb_source_raw_blobs(db: Database, znuny_mariadb: ZnunyDatabase) -> None:
    pytest.importorskip("asyncmy", reason="MariaDB's driver (helper mariadb) is not installed")
    await populate(znuny_mariadb.engine, tickets=60)
    summary = await _import(db, znuny_mariadb)
    assert summary.copied["tickets"] == await _count(znuny_mariadb.engine, "ticket")
    source_plain, source_files = await _source_blobs(znuny_mariadb)
    target_plain, target_files = await _target_blobs(db)
    assert target_plain == source_plain
    assert target_files == source_files


# --- the pure parts ---


def test_blobs_decode_by_column_type() -> None:
    text_blobs, raw_blobs = blob_tables(True), blob_tables(False)
    assert text_blobs.decode(base64.encodebytes(b"\x00\xffmail").decode()) == b"\x00\xffmail"
    assert raw_blobs.decode(b"raw bytes") == b"raw bytes"
    assert text_blobs.decode("From: welcome@znuny.org\nSubject: Welcome") == (
        b"From: welcome@znuny.org\nSubject: Welcome"
    )
    with pytest.raises(UnreadableBlob):
        text_blobs.decode("not base64 at all!")


def test_counter_after_reads_todays_numbers() -> None:
    day = datetime(2026, 12, 7).date()
    base = f"2026120710{42:05d}"
    numbers = [base + str(checksum_digit(base)), "2026120610999991", "other"]
    assert mapping.counter_after(numbers, GENERATOR, day) == 42
    auto = make_generator("AutoIncrement")
    assert mapping.counter_after(["1000123", "2000999"], auto, day) == 123


def test_filter_rows_group_into_rules() -> None:
    rows = [
        {
            "f_name": "b",
            "f_stop": 1,
            "f_type": "Set",
            "f_key": "X-OTRS-Queue",
            "f_value": "Raw",
            "f_not": 0,
        },
        {
            "f_name": "a",
            "f_stop": 0,
            "f_type": "Match",
            "f_key": "From",
            "f_value": "x@",
            "f_not": 1,
        },
        {"f_name": "b", "f_stop": 0, "f_type": "Match", "f_key": "To", "f_value": "y@", "f_not": 0},
    ]
    a, b = mapping.filter_rules(rows)
    assert (a.name, a.match[0].negate, a.stop) == ("a", True, False)
    assert (b.name, b.stop, b.set[0].header, len(b.match)) == ("b", True, "X-OTRS-Queue", 1)


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(stream, total=4, every=3600)
        progress.step(2)
        progress.step(2)
        progress.finish()
    assert "\rtickets [###############               ] 2/4" in terminal.getvalue()
    assert terminal.getvalue().endswith("4/4\n")
    assert log.getvalue() == "tickets: 2/4\ntickets: 4/4\n"


async def test_a_state_of_another_type_is_refused(db: Database, znuny: ZnunyDatabase) -> None:
    """Znuny's `open` made a closed state: the tickets in it would change meaning here."""
    async with znuny.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE ticket_state SET type_id = (SELECT id FROM ticket_state_type "
                "WHERE name = 'closed') WHERE name = 'open'"
            )
        )
    with pytest.raises(ImportRefused, match="ticket state 'open' is of another state type"):
        await _import(db, znuny)
    assert await _count(db, "ticket") == 0


async def test_deadlines_passed_in_znuny_do_not_notify_after_the_import(
    db: Database, znuny: ZnunyDatabase
) -> None:
    """Open tickets get their escalation clocks at once; what fell due while they were in
    Znuny (which warned about it there) counts as fired, so the first due scan does not send
    agents a notice for every overdue ticket of the import."""
    await _import(db, znuny, batch=100)
    now = int(time.time())
    async with db.connect() as conn:
        rows = (await conn.execute(
            text("SELECT ticket_id, " + ", ".join(CLOCK_COLUMNS) + " FROM ticket_escalation")
        )).all()  # fmt: skip
    clocks = [Clock(r[0], **{c: int(v or 0) for c, v in zip(CLOCK_COLUMNS, r[1:], strict=True)})
              for r in rows]  # fmt: skip
    assert clocks, "the imported open tickets have no escalation clocks"
    settled = [c for c in clocks if any(c.stage(k) == ESCALATED for k in KINDS)]
    assert settled, "no imported ticket was overdue: the test shows nothing"
    due_now = [e for c in clocks for e in due_events(c, now) if e.kind != "pending"]
    assert due_now == []
