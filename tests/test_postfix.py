"""pytrs behind a real Postfix: the pipe transport and LMTP, read from Postfix's own maillog.

The transports are the README's lines (section "Installing as a service"), read from it by
`tests/install.py`, with this test's ports, paths and user. Postfix accepts the mail over SMTP
and hands it to pytrs; when pytrs cannot store it (its database cut: PostgreSQL behind a TCP
relay the test closes, SQLite with its inbox table taken away) it answers `451` over LMTP or
exits 75 from the pipe, Postfix keeps the mail, and after the database is back `postqueue -f`
delivers it once: one inbox row, one article for its Message-ID.

The pipe trap: a pipe line Postfix cannot run as written (an unknown option, a configuration
that is not there) must defer the mail (exit 75 → `dsn=4.3.0, status=deferred`), never bounce it
for good, and say why in the log. Over LMTP, Postfix logs pytrs's `250 … queued as ID`, which
leads an admin from the MTA's log to `pytrs inbox show ID`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from pytrs.schema.database import Database, create_database
from pytrs.schema.tables import article_data_mime, inbox

from .conftest import RunningDaemon, make_config, wait_until
from .helpers import all_processed, make_mail, unique_id
from .install import code_blocks, readme_section
from .postfix import PIPE_USER, PostfixServer, unprivileged_python
from .test_outage import TcpRelay

ROOT = Path(__file__).resolve().parents[1]
RECIPIENT = "support@example.com"


# --- the README's lines ---------------------------------------------------------------------


def readme_lmtp(port: int) -> tuple[str, str]:
    """`relay_domains` and the LMTP `relay_transport` of the README, at `port`."""
    found = re.search(
        r"'relay_domains = ([^']+)' 'relay_transport = (lmtp:inet:127\.0\.0\.1:2424)'",
        readme_section(),
    )
    assert found, "the README's postconf line for LMTP is gone"
    return found[1], found[2].replace(":2424", f":{port}")


def readme_pipe(config: Path, credentials: Path) -> str:
    """The README's master.cf pipe service, run by this checkout as the pipe user."""
    [service] = [b for b in code_blocks(readme_section(), "") if " pipe\n" in b]
    python, pythonpath = unprivileged_python(PIPE_USER)
    rewritten = (
        service.replace("user=pytrs ", f"user={PIPE_USER} ")
        .replace("/opt/pytrs/.venv/bin/pytrs", f"PYTHONPATH={pythonpath} {python} -m pytrs")
        .replace("/etc/pytrs/pytrs.toml", str(config))
        .replace("/run/credentials/pytrs.service", str(credentials))
    )
    assert "/opt/pytrs" not in rewritten and "/etc/pytrs" not in rewritten, rewritten
    return rewritten


def pipe_service(deliver_arguments: str) -> str:
    """A master.cf pipe transport `pytrs` running `pytrs deliver` with `deliver_arguments`."""
    python, pythonpath = unprivileged_python(PIPE_USER)
    return (
        f"pytrs     unix  -       n       n       -       -       pipe\n"
        f"  user={PIPE_USER} argv=/usr/bin/env PYTHONPATH={pythonpath} {python} -m pytrs "
        f"deliver {deliver_arguments} --recipient ${{recipient}} --sender ${{sender}}\n"
    )


# --- a database the pipe user can reach ------------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder both root (the test) and the pipe user may write: config and SQLite file."""
    folder = Path(tempfile.mkdtemp(prefix="pytrs-postfix-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def shared_settings(shared_dir: Path, database_settings: dict[str, Any]) -> dict[str, Any]:
    """The `[database]` table: the test's PostgreSQL schema, or an SQLite file in `shared_dir`."""
    if database_settings["url"].startswith("sqlite"):
        return {"url": f"sqlite+aiosqlite:///{shared_dir / 'pytrs.db'}"}
    return dict(database_settings)


def write_config(shared_dir: Path, database: dict[str, Any], *extra: str) -> Path:
    """A configuration file the pipe user can read, its database upgraded and writable."""
    lines = ["[database]", f'url = "{database["url"]}"']
    if database.get("schema"):
        lines.append(f'schema = "{database["schema"]}"')
    lines += [
        "[smtp]",
        "listen = []",
        "[web]",
        'listen = ""',
        *extra,
        "[[queues]]",
        'name = "Support"',
        "[[system_addresses]]",
        f'address = "{RECIPIENT}"',
        'queue = "Support"',
    ]
    config = shared_dir / "pytrs.toml"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o644)
    upgraded = pytrs_cli(config, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    for path in shared_dir.glob("pytrs.db*"):
        path.chmod(0o666)
    return config


def pytrs_cli(config: Path, *words: str) -> subprocess.CompletedProcess[bytes]:
    credentials = config.parent / "credentials"
    return subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(config), *words],
        env={**os.environ, "CREDENTIALS_DIRECTORY": str(credentials)},
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def pipe_config(shared_dir: Path, database_settings: dict[str, Any]) -> Path:
    return write_config(shared_dir, shared_settings(shared_dir, database_settings))


def make_credentials(shared_dir: Path) -> Path:
    """What systemd's LoadCredential= would give: the loop key, readable by the pipe user."""
    folder = shared_dir / "credentials"
    folder.mkdir(mode=0o755)
    key = folder / "pytrs_loop.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o644)
    return folder


# --- the pipe and LMTP transports as the README writes them -----------------------------------


def test_the_readme_pipe_line_delivers(shared_dir: Path, database_settings: dict[str, Any]) -> None:
    credentials = make_credentials(shared_dir)
    config = write_config(
        shared_dir,
        shared_settings(shared_dir, database_settings),
        "[outbound]",
        'loop_secret_file = "${CREDENTIALS_DIRECTORY}/pytrs_loop.key"',
    )
    postfix = PostfixServer.start(
        domain="example.com", transport="pytrs", services=readme_pipe(config, credentials)
    )
    try:
        postfix.send(
            make_mail(subject="through the pipe"),
            "alice@customer.example",
            ["support+billing@example.com"],
        )
        outcome = postfix.outcome("support+billing@example.com")
    finally:
        postfix.stop()
    assert outcome.status == "sent", outcome
    listing = pytrs_cli(config, "inbox", "list", "--json")
    assert b'"support+billing@example.com"' in listing.stdout, listing
    assert b'"through the pipe"' in listing.stdout


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ("--config {config} --no-such-option", "unrecognized arguments: --no-such-option"),
        ("--config {folder}/missing.toml", "missing.toml"),
        ("", "no configuration file"),
    ],
    ids=["unknown-option", "missing-config", "no-config"],
)
def test_a_mistyped_pipe_line_defers_the_mail_and_says_why(
    tmp_path: Path, pipe_config: Path, arguments: str, says: str
) -> None:
    line = arguments.format(config=pipe_config, folder=pipe_config.parent)
    postfix = PostfixServer.start(
        domain="example.com", transport="pytrs", services=pipe_service(line)
    )
    try:
        postfix.send(make_mail(), "alice@customer.example", [RECIPIENT])
        outcome = postfix.outcome(RECIPIENT)
    finally:
        postfix.stop()
    # Deferred with a temporary status, never bounced: the mail stays in Postfix's queue.
    assert (outcome.status, outcome.dsn) == ("deferred", "4.3.0"), outcome
    assert says in outcome.reason, outcome


async def test_lmtp_250_names_the_inbox_row(tmp_path: Path, daemon: RunningDaemon) -> None:
    domain, transport = readme_lmtp(daemon.port("lmtp"))
    postfix = await asyncio.to_thread(PostfixServer.start, domain=domain, transport=transport)
    try:
        await asyncio.to_thread(
            postfix.send, make_mail(subject="over lmtp"), "alice@customer.example", [RECIPIENT]
        )
        outcome = await asyncio.to_thread(postfix.outcome, RECIPIENT)
    finally:
        await asyncio.to_thread(postfix.stop)
    assert outcome.status == "sent", outcome
    assert daemon.daemon.db is not None
    async with daemon.daemon.db.connect() as conn:
        [row] = (await conn.execute(select(inbox))).all()
    assert outcome.reason.endswith(f"queued as {row.id}"), outcome


# --- the database cut: Postfix defers, then delivers once ---------------------------------------


class Outage:
    """Cuts pytrs off its database and brings it back.

    PostgreSQL: pytrs reaches the server through a TCP relay that is closed (connections
    reset, new ones refused), as in test_outage.py. SQLite, a local file: the inbox table is
    renamed away, so every write fails (test_ingest's storage failure).
    """

    def __init__(self, shared_dir: Path, database_settings: dict[str, Any]) -> None:
        self.direct = shared_settings(shared_dir, database_settings)
        # The `[database]` table pytrs is given: through the relay on PostgreSQL (`open`).
        self.through = self.direct
        self.relay: TcpRelay | None = None
        self.db: Database = create_database(make_config(self.direct).database)

    async def open(self) -> None:
        if not self.direct["url"].startswith("postgresql"):
            return
        url = make_url(self.direct["url"])
        self.relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
        await self.relay.start()
        relayed = url.set(host="127.0.0.1", port=self.relay.port)
        self.through = {**self.direct, "url": relayed.render_as_string(hide_password=False)}

    async def cut(self) -> None:
        if self.relay is not None:
            await self.relay.cut()
            return
        async with self.db.transaction() as conn:
            await conn.execute(text("ALTER TABLE inbox_message RENAME TO inbox_message_away"))

    async def restore(self) -> None:
        if self.relay is not None:
            await self.relay.start()  # on the same port
            return
        async with self.db.transaction() as conn:
            await conn.execute(text("ALTER TABLE inbox_message_away RENAME TO inbox_message"))

    async def close(self) -> None:
        if self.relay is not None and self.relay.server is not None:
            self.relay.server.close()
            await self.relay.server.wait_closed()
        await self.db.close()


@pytest.fixture
async def outage(
    shared_dir: Path, database_settings: dict[str, Any]
) -> AsyncIterator[tuple[Outage, Path]]:
    """The outage, and a configuration file (for the pipe) that goes through it."""
    cut = Outage(shared_dir, database_settings)
    try:
        await cut.open()
        config = await asyncio.to_thread(write_config, shared_dir, cut.through)
        yield cut, config
    finally:
        await cut.close()


async def stored_once(db: Database, message_id: str) -> tuple[int, int]:
    """(inbox rows, articles) carrying `message_id`, once every inbox row is processed."""

    async def counts() -> tuple[int, int] | None:
        if not await all_processed(db):
            return None
        async with db.connect() as conn:
            rows = await conn.scalar(
                select(func.count()).select_from(inbox).where(inbox.c.message_id == message_id)
            )
            articles = await conn.scalar(
                select(func.count())
                .select_from(article_data_mime)
                .where(article_data_mime.c.a_message_id == message_id)
            )
        return (rows or 0, articles or 0) if articles else None

    return await wait_until(counts, within=60)


@pytest.mark.parametrize("transport", ["lmtp", "pipe"])
async def test_a_database_outage_defers_and_the_flush_delivers_exactly_once(
    transport: str,
    outage: tuple[Outage, Path],
    start_daemon: Callable[[Any], Any],
) -> None:
    cut, config = outage
    daemon: RunningDaemon = await start_daemon(make_config(cut.through))
    if transport == "lmtp":
        domain, route = readme_lmtp(daemon.port("lmtp"))
        services = ""
    else:
        domain, route = "example.com", "pytrs"
        services = readme_pipe(config, make_credentials(config.parent))
    postfix = await asyncio.to_thread(
        PostfixServer.start, domain=domain, transport=route, services=services
    )
    message_id = unique_id()
    try:
        await cut.cut()
        await asyncio.to_thread(
            postfix.send, make_mail(message_id=message_id), "alice@customer.example", [RECIPIENT]
        )
        deferred = await asyncio.to_thread(postfix.wait_for, RECIPIENT, "deferred")
        await cut.restore()
        await asyncio.to_thread(postfix.flush)
        sent = await asyncio.to_thread(postfix.wait_for, RECIPIENT, "sent")
        outcomes = postfix.outcomes(RECIPIENT)
    finally:
        await asyncio.to_thread(postfix.stop)
    # 451 over LMTP, exit 75 from the pipe: a temporary failure, the mail kept.
    assert deferred.dsn.startswith("4."), deferred
    assert ("451 4.3.0" in deferred.reason) if transport == "lmtp" else deferred.dsn == "4.3.0"
    assert sent.dsn == "2.0.0", sent
    assert [o.status for o in outcomes].count("sent") == 1, outcomes
    assert await stored_once(cut.db, message_id) == (1, 1)
