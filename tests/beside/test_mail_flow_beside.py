"""pytrs beside an existing Znuny 7.0 ([database] mode = "znuny") on PostgreSQL: `db attach`
and `db check` against Znuny's real shapes, then mail in over SMTP becoming tickets and
articles that Znuny reads as its own (base64 bodies, lengths, history, counter), filters that
Znuny's admin wrote, and Znuny's auto responses with their `<OTRS_*>` tags."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pytrs.config import Config
from pytrs.daemon import Daemon

from ..conftest import RunningDaemon, make_config, wait_until
from ..helpers import make_mail, send, unique_id
from ..test_cli import pytrs
from ..znuny.fixtures import ZnunyDatabase
from .conftest import Beside

pytestmark = pytest.mark.znuny

CUSTOMER = "Carla Customer <carla@customer.example>"


def _toml(path: Path, znuny: ZnunyDatabase) -> Path:
    settings = znuny.settings()
    lines = ["[database]"] + [f'{key} = "{value}"' for key, value in settings.items()]
    lines += [
        "[smtp]", 'listen = ["127.0.0.1:0"]', "[web]", 'listen = ""',
        "[[queues]]", 'name = "Support"',
        "[[system_addresses]]", 'address = "support@example.com"', 'queue = "Support"',
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


async def _rows(znuny: ZnunyDatabase, sql: str, **params: Any) -> list[Any]:
    async with znuny.engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def test_attach_creates_only_pytrs_tables_and_check_accepts_znuny(
    tmp_path: Path, znuny_postgresql: ZnunyDatabase
) -> None:
    znuny = znuny_postgresql
    before = {r[0] for r in await _rows(
        znuny, "SELECT table_name FROM information_schema.columns WHERE table_schema = :s",
        s=znuny.schema)}  # fmt: skip
    columns_before = await _rows(
        znuny,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = :s ORDER BY 1, 2",
        s=znuny.schema,
    )
    config = _toml(tmp_path / "pytrs.toml", znuny)
    unattached = pytrs(config, "db", "check")
    assert unattached.returncode == 1 and b"pytrs db attach" in unattached.stderr

    attached = pytrs(config, "db", "attach")
    assert attached.returncode == 0, attached.stderr.decode()
    out = attached.stdout.decode()
    assert "inbox_message" in out and "outbox_message" in out and "article_search" in out
    # Znuny's tables are as they were: no table added among them, no column changed.
    assert columns_before == await _rows(
        znuny,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = :s ORDER BY 1, 2",
        s=znuny.schema,
    )
    own = {r[0] for r in await _rows(
        znuny, "SELECT table_name FROM information_schema.tables WHERE table_schema = :s",
        s=znuny.own_schema)}  # fmt: skip
    assert {"inbox_message", "mail_account", "auto_response_language", "alembic_version"} <= own
    assert not own & (before - {"mail_account"})

    checked = pytrs(config, "db", "check")
    assert checked.returncode == 0, checked.stderr.decode()
    notes = checked.stdout.decode()
    assert "users.email: missing" in notes
    assert "article_data_mime_plain.body: TEXT holding base64" in notes
    assert "article_data_mime.a_subject: longer values are cut to 3800" in notes

    again = pytrs(config, "db", "attach")
    assert again.returncode == 0 and "created none" in again.stdout.decode()


async def test_check_names_what_pytrs_cannot_work_with(
    tmp_path: Path, znuny_postgresql: ZnunyDatabase
) -> None:
    znuny = znuny_postgresql
    config = _toml(tmp_path / "pytrs.toml", znuny)
    assert pytrs(config, "db", "attach").returncode == 0
    async with znuny.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE article_data_mime DROP COLUMN a_references"))
        # A required column of a later Znuny (or an add-on) that pytrs knows nothing of.
        await conn.execute(
            text("ALTER TABLE ticket ADD COLUMN mood VARCHAR(10) NOT NULL DEFAULT 'calm'")
        )
        await conn.execute(text("ALTER TABLE ticket ALTER COLUMN mood DROP DEFAULT"))
    checked = pytrs(config, "db", "check")
    assert checked.returncode == 1
    errors = checked.stderr.decode()
    assert "article_data_mime.a_references: column missing" in errors
    assert "ticket.mood: NOT NULL without a default" in errors
    # `run` refuses the same database with one line naming the first problems.
    refused = pytrs(config, "run", timeout=60)
    assert refused.returncode == 3, refused.stderr.decode()
    assert b"Znuny's tables do not fit pytrs" in refused.stderr
    assert b"Traceback" not in refused.stderr


@pytest.fixture
async def start(beside: Beside) -> AsyncIterator[Callable[[Config], Any]]:
    running: list[RunningDaemon] = []

    async def go(config: Config) -> RunningDaemon:
        postmaster = dataclasses.replace(config.postmaster, processes=0)
        daemon = Daemon(dataclasses.replace(config, postmaster=postmaster))
        task = asyncio.create_task(daemon.run())
        started = asyncio.create_task(daemon.started.wait())
        await asyncio.wait({task, started}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        running.append(RunningDaemon(daemon, task))
        return running[-1]

    yield go
    for handle in running:
        if not handle.task.done():
            await handle.stop()


async def test_mail_becomes_a_ticket_znuny_reads(
    beside: Beside, start: Callable[[Config], Any]
) -> None:
    znuny = beside.znuny
    config = make_config(beside.settings)
    daemon = await start(config)
    message_id = unique_id()
    long_subject = "Printer on fire " + "x" * 4000
    raw = make_mail(sender=CUSTOMER, subject=long_subject, message_id=message_id)
    await send(daemon.port(), raw)

    async def stored() -> list[Any]:
        return await _rows(
            znuny,
            "SELECT t.id, t.tn, t.queue_id, a.id AS article_id, m.a_subject, m.a_message_id_md5,"
            " a.search_index_needs_rebuild, p.body FROM ticket t"
            " JOIN article a ON a.ticket_id = t.id"
            " JOIN article_data_mime m ON m.article_id = a.id"
            " JOIN article_data_mime_plain p ON p.article_id = a.id"
            " WHERE m.a_message_id = :mid",
            mid=message_id,
        )

    [row] = await wait_until(stored, within=30)
    assert len(row.a_subject) == 3800 and row.a_subject.startswith("Printer on fire")
    # The raw mail is base64 TEXT, as Znuny's ArticleStorageDB keeps it on PostgreSQL.
    assert base64.b64decode(row.body) == raw
    assert row.search_index_needs_rebuild == 1
    [queue] = await _rows(znuny, "SELECT name FROM queue WHERE id = :q", q=row.queue_id)
    assert queue.name == "Support"
    # Znuny's seeded history types, and the ticket's type in every history row.
    history = await _rows(
        znuny,
        "SELECT h.type_id, t.name FROM ticket_history h"
        " JOIN ticket_history_type t ON t.id = h.history_type_id WHERE h.ticket_id = :t",
        t=row.id,
    )
    assert "NewTicket" in {h.name for h in history} and all(h.type_id for h in history)
    # A DateChecksum number continuing Znuny's counter table (one row per number).
    counters = await _rows(znuny, "SELECT counter FROM ticket_number_counter ORDER BY id")
    assert counters and row.tn.endswith(str(counters[-1].counter).zfill(5) + row.tn[-1])


async def test_znuny_filters_attachments_and_follow_ups(
    beside: Beside, start: Callable[[Config], Any]
) -> None:
    """A filter Znuny's admin wrote (rows without ids) routes the mail; its attachment is base64
    TEXT that decodes to the bytes sent; a reply with the ticket number in its subject becomes a
    follow-up article of the same ticket."""
    znuny = beside.znuny
    async with znuny.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO postmaster_filter (f_name, f_stop, f_type, f_key, f_value, f_not)"
                " VALUES ('vip-to-misc', 0, 'Match', 'Subject', 'VIP', 0),"
                " ('vip-to-misc', 0, 'Set', 'X-OTRS-Queue', 'Misc', 0)"
            )
        )
    daemon = await start(make_config(beside.settings))
    payload = bytes(range(256)) * 40
    message = EmailMessage()
    message["From"], message["To"] = CUSTOMER, "support@example.com"
    message["Subject"], message["Message-ID"] = "VIP: contract", unique_id()
    message.set_content("See the attached file.\n")
    message.add_attachment(payload, maintype="application", subtype="octet-stream",
                           filename="contract.bin")  # fmt: skip
    await send(daemon.port(), message.as_bytes())

    async def first() -> list[Any]:
        return await _rows(
            znuny,
            "SELECT t.id, t.tn, q.name AS queue, x.content FROM ticket t"
            " JOIN queue q ON q.id = t.queue_id JOIN article a ON a.ticket_id = t.id"
            " JOIN article_data_mime_attachment x ON x.article_id = a.id"
            " WHERE x.filename = 'contract.bin'",
        )

    [row] = await wait_until(first, within=30)
    assert row.queue == "Misc"
    assert base64.b64decode(row.content) == payload

    reply = make_mail(sender=CUSTOMER, subject=f"Re: [Ticket#{row.tn}] VIP: contract",
                      message_id=unique_id())  # fmt: skip
    await send(daemon.port(), reply)

    async def articles_of_ticket() -> int:
        [count] = await _rows(
            znuny, "SELECT count(*) AS n FROM article WHERE ticket_id = :t", t=row.id
        )
        return int(count.n) if count.n >= 2 else 0

    assert await wait_until(articles_of_ticket, within=30) == 2
    names = {r.name for r in await _rows(
        znuny,
        "SELECT t.name FROM ticket_history h JOIN ticket_history_type t"
        " ON t.id = h.history_type_id WHERE h.ticket_id = :t", t=row.id)}  # fmt: skip
    assert {"NewTicket", "FollowUp"} <= names
