"""pytrs behind a real Postfix: the pipe transport and LMTP, read from Postfix's own maillog.

The pipe trap: a pipe line Postfix cannot run as written (an unknown option, a configuration
that is not there) must defer the mail (exit 75 → `dsn=4.3.0, status=deferred`), never bounce it
for good, and say why in the log; written with `--config` after the subcommand, as the README
shows, it must deliver. Over LMTP, Postfix logs pytrs's `250 … queued as ID`, which leads an
admin from the MTA's log to `pytrs inbox show ID`.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema.tables import inbox

from .conftest import RunningDaemon
from .helpers import make_mail
from .postfix import PIPE_USER, PostfixServer, unprivileged_python

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder both root (the test) and the pipe user may write: config and SQLite file."""
    folder = Path(tempfile.mkdtemp(prefix="pytrs-postfix-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pipe_config(shared_dir: Path, database_settings: dict[str, Any]) -> Path:
    """A configuration file the pipe user can read, its database upgraded and writable."""
    url = database_settings["url"]
    if url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{shared_dir / 'pytrs.db'}"
    lines = ["[database]", f'url = "{url}"']
    if database_settings.get("schema"):
        lines.append(f'schema = "{database_settings["schema"]}"')
    lines += [
        "[smtp]",
        "listen = []",
        "[web]",
        'listen = ""',
        "[[queues]]",
        'name = "Support"',
        "[[system_addresses]]",
        'address = "support@example.com"',
        'queue = "Support"',
    ]
    config = shared_dir / "pytrs.toml"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o644)
    upgraded = subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(config), "db", "upgrade"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    for path in shared_dir.glob("pytrs.db*"):
        path.chmod(0o666)
    return config


def pipe_service(deliver_arguments: str) -> str:
    """A master.cf pipe transport `pytrs` running `pytrs deliver` as the README shows."""
    python, pythonpath = unprivileged_python(PIPE_USER)
    return (
        f"pytrs     unix  -       n       n       -       -       pipe\n"
        f"  user={PIPE_USER} argv=/usr/bin/env PYTHONPATH={pythonpath} {python} -m pytrs "
        f"deliver {deliver_arguments} --recipient ${{recipient}} --sender ${{sender}}\n"
    )


async def stored(config_url_db: Any) -> list[Any]:
    async with config_url_db.connect() as conn:
        return list((await conn.execute(select(inbox))).all())


def test_the_readme_pipe_line_delivers(tmp_path: Path, pipe_config: Path) -> None:
    postfix = PostfixServer.start(
        domain="example.com",
        transport="pytrs",
        services=pipe_service(f"--config {pipe_config}"),
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
    listing = subprocess.run(
        [sys.executable, "-m", "pytrs", "--config", str(pipe_config), "inbox", "list", "--json"],
        capture_output=True,
        timeout=60,
        check=False,
    )
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
        postfix.send(make_mail(), "alice@customer.example", ["support@example.com"])
        outcome = postfix.outcome("support@example.com")
    finally:
        postfix.stop()
    # Deferred with a temporary status, never bounced: the mail stays in Postfix's queue.
    assert (outcome.status, outcome.dsn) == ("deferred", "4.3.0"), outcome
    assert says in outcome.reason, outcome


async def test_lmtp_250_names_the_inbox_row(tmp_path: Path, daemon: RunningDaemon) -> None:
    transport = f"lmtp:inet:127.0.0.1:{daemon.port('lmtp')}"
    postfix = await asyncio.to_thread(
        PostfixServer.start, domain="example.com", transport=transport
    )
    try:
        await asyncio.to_thread(
            postfix.send,
            make_mail(subject="over lmtp"),
            "alice@customer.example",
            ["support@example.com"],
        )
        outcome = await asyncio.to_thread(postfix.outcome, "support@example.com")
    finally:
        await asyncio.to_thread(postfix.stop)
    assert outcome.status == "sent", outcome
    assert daemon.daemon.db is not None
    [row] = await stored(daemon.daemon.db)
    assert outcome.reason.endswith(f"queued as {row.id}"), outcome
