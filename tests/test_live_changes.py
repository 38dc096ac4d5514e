"""A running daemon picks up what is changed under it (issue: "Re-imported filters are ignored
by a running daemon on SQLite"): filter and auto-response imports through the command line, and
the system addresses another daemon's start provisions, reach mail sent over SMTP afterwards.
"""

from __future__ import annotations

import asyncio
import email
import smtplib
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from sqlalchemy import text

from pytrs.config import Config
from pytrs.provisioning import provision
from pytrs.schema.database import Database

from .conftest import make_config, wait_until
from .helpers import all_processed, make_mail, send, tickets
from .servers.relay import RecordingRelay
from .test_cli import pytrs, write_config

ROUTE = """
[[filters]]
name = "route"
match = [ { header = "Subject", value = ".+" } ]
set = [ { header = "X-PyTRS-Queue", value = "%s" } ]
"""

RESPONSE = """
[[responses]]
name = "support-reply"
queues = ["Support"]
type = "auto reply"
subject = "Re: {{ article.subject }}"
body = "%s"

[[responses]]
name = "sales-reply"
queues = ["Sales"]
type = "auto reply"
subject = "Re: {{ article.subject }}"
body = "Sales will answer."
"""


# One worker, so that every mail meets the cache the first one filled.
ONE_WORKER = {"workers": 1, "poll_interval_seconds": 0.2, "retry_backoff_seconds": 0.1}


def _answering(database: dict[str, Any], relay: RecordingRelay, **overrides: Any) -> Config:
    outbound = {
        "relay": relay.address, "loop_secret": "0123456789abcdef-loop-secret-for-tests",
        "poll_interval_seconds": 0.05, "retry_backoff_seconds": 0.05, "timeout_seconds": 5.0,
    }  # fmt: skip
    return make_config(database, outbound=outbound, postmaster=ONE_WORKER, **overrides)


async def _import(tmp_path: Path, database: dict[str, Any], what: str, content: str) -> None:
    """`pytrs filters|responses import FILE` in a process of its own, as an admin runs it (from
    a thread: the daemon runs in this loop and must go on meanwhile)."""
    path = tmp_path / f"{what}.toml"
    path.write_text(content)
    config = write_config(tmp_path / "cli.toml", database)
    done = await asyncio.to_thread(pytrs, config, what, "import", str(path))
    assert done.returncode == 0, done.stderr


async def _ticket_queue(db: Database, daemon: Any, subject: str) -> str:
    await send(daemon.port(), make_mail(subject=subject))
    await wait_until(lambda: all_processed(db))
    [found] = [t for t in await tickets(db) if t["title"] == subject]
    return str(found["queue"])


async def test_a_reimported_filter_set_of_the_same_size_is_used(
    tmp_path: Path, database_settings: dict[str, Any], db: Database, start_daemon: Any
) -> None:
    """On SQLite, set B gets the ids set A had (every row deleted, then as many inserted): the
    row count and highest id are the same, yet B must route the next mail."""
    daemon = await start_daemon(make_config(database_settings, postmaster=ONE_WORKER))
    await _import(tmp_path, database_settings, "filters", ROUTE % "Sales")
    assert await _ticket_queue(db, daemon, "first") == "Sales"
    await _import(tmp_path, database_settings, "filters", ROUTE % "Billing")
    assert await _ticket_queue(db, daemon, "second") == "Billing"
    await _import(tmp_path, database_settings, "filters", ROUTE % "Sales")
    assert await _ticket_queue(db, daemon, "third") == "Sales"


def _body(received: Any) -> str:
    message = email.message_from_bytes(received.data, policy=default_policy)
    return str(message.get_content()).strip()  # type: ignore[attr-defined]


async def test_a_reimported_auto_response_is_used(
    tmp_path: Path, database_settings: dict[str, Any], db: Database, start_daemon: Any,
    relay: RecordingRelay,
) -> None:  # fmt: skip
    """The new template answers the next mail even when the newest change_time among the
    responses stays the same: the rows were written on a host whose clock runs ahead (several
    hosts share a PostgreSQL database) or before the clock was stepped back, so the import of
    B writes an older time than the untouched Sales response already has."""
    daemon = await start_daemon(_answering(database_settings, relay))
    await _import(tmp_path, database_settings, "responses", RESPONSE % "Version A")
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE auto_response SET change_time = '2099-01-01 00:00:00'"))
        await conn.execute(text("UPDATE queue_auto_response SET change_time = '2099-01-01'"))
    await send(daemon.port(), make_mail(subject="first"))
    [first] = await relay.wait_for(1)
    assert _body(first) == "Version A"
    await _import(tmp_path, database_settings, "responses", RESPONSE % "Version B")
    await send(daemon.port(), make_mail(subject="second", sender="Bob <bob@customer.example>"))
    second = (await relay.wait_for(2))[1]
    assert _body(second) == "Version B"


async def test_addresses_provisioned_by_another_daemon_reach_a_running_one(
    database_settings: dict[str, Any], db: Database, start_daemon: Any, relay: RecordingRelay
) -> None:
    """Two daemons share a database; the second starts with a file that adds an address and
    renames one: the first accepts the new address and answers from the new name."""
    reply = {"queue": "Support", "type": "auto reply", "subject": "Re: {{ article.subject }}",
             "body": "Thanks."}  # fmt: skip
    daemon = await start_daemon(_answering(database_settings, relay, auto_responses=[reply]))
    changed = make_config(
        database_settings,
        system_addresses=[
            {"address": "support@example.com", "name": "Support Team", "queue": "Support"},
            {"address": "help@example.com", "name": "Help", "queue": "Support"},
        ],
        auto_responses=[reply],
    )
    await provision(db, changed)  # what the second daemon's start does

    async def accepted() -> bool:
        try:
            await send(daemon.port(), make_mail(to="help@example.com"), "help@example.com")
        except smtplib.SMTPRecipientsRefused:
            return False
        return True

    await wait_until(accepted, within=15, interval=0.5)
    [answer] = await relay.wait_for(1)
    message = email.message_from_bytes(answer.data, policy=default_policy)
    assert message["From"] == "Support Team <support@example.com>"
