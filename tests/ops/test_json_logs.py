"""`[daemon] log_format = "json"`: a daemon process writes one JSON object per stderr line, and
the lines about one mail carry its inbox id, Message-ID, ticket number and routing decision.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pytrs.runtime.logs import JsonFormatter
from pytrs.schema.database import Database
from pytrs.schema.tables import ticket

from ..conftest import wait_until
from ..helpers import all_processed, make_mail, send, unique_id
from ..servers.relay import RecordingRelay
from ..test_cli import pytrs, write_config
from ..test_lifecycle import DaemonProcess
from .conftest import AUTO_REPLY

JSON = '[daemon]\nlog_format = "json"\nlog_level = "INFO"\n'


async def test_every_line_is_json_and_decisions_carry_their_fields(
    tmp_path: Path, database_settings: dict[str, Any], db: Database, relay: RecordingRelay
) -> None:
    extra = f"""{JSON}
[postmaster]
poll_interval_seconds = 0.2
[outbound]
relay = "{relay.address}"
poll_interval_seconds = 0.1
{AUTO_REPLY}"""
    config = write_config(tmp_path / "pytrs.toml", database_settings, extra)
    assert pytrs(config, "db", "upgrade").returncode == 0
    log = tmp_path / "daemon.log"
    daemon = DaemonProcess(config, log)
    first, second = unique_id(), unique_id()
    try:
        await send(daemon.port, make_mail(subject="Printer on fire", message_id=first))
        await wait_until(lambda: all_processed(db))
        tn = await _only_ticket_number(db)
        follow_up = make_mail(subject=f"Re: [Ticket#{tn}] still burning", message_id=second)
        await send(daemon.port, follow_up)
        await wait_until(lambda: all_processed(db))
        await relay.wait_for(1)
        # In a thread: the relay in this loop must answer the sender's goodbye.
        assert await asyncio.to_thread(daemon.stop) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait()
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line parses, or the test fails here
    assert len(entries) > 5
    for entry in entries:
        assert {"ts", "level", "logger", "message"} <= entry.keys(), entry
        assert entry["ts"].endswith("Z") and entry["ts"][10] == "T", entry["ts"]
    decisions = {e["message_id"]: e for e in entries if "decision" in e}
    assert decisions[first]["decision"] == "new_ticket"
    assert decisions[second]["decision"] == "follow_up"
    for message_id in (first, second):
        entry = decisions[message_id]
        assert entry["ticket"] == tn and entry["queue"] == "Support", entry
        assert isinstance(entry["inbox_id"], int)
        assert entry["logger"] == "pytrs.postmaster.worker" and entry["level"] == "INFO"
    assert decisions[second]["via"] == "subject"
    sent = [e for e in entries if e.get("outcome") == "sent"]
    assert sent and isinstance(sent[0]["outbox_id"], int), entries
    assert sent[0]["message_id"] == relay.received[0].message_id


async def _only_ticket_number(db: Database) -> str:
    async with db.connect() as conn:
        return str((await conn.execute(select(ticket.c.tn))).scalar_one())


def test_a_traceback_is_one_field_of_one_line() -> None:
    logger = logging.getLogger("pytrs.test.json")
    try:
        raise ValueError("bad header\nsecond line")
    except ValueError:
        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "inbox %d failed", (7,),
            exc_info=sys.exc_info(), extra={"inbox_id": 7},
        )  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "inbox 7 failed" and entry["inbox_id"] == 7
    assert entry["level"] == "ERROR" and entry["logger"] == "pytrs.test.json"
    assert "ValueError: bad header" in entry["exception"]


def test_config_check_refuses_an_unknown_log_format(tmp_path: Path) -> None:
    database = {"url": "sqlite+aiosqlite:///x.db"}
    good = write_config(tmp_path / "good.toml", database, extra=JSON)
    assert pytrs(good, "config", "check").returncode == 0
    bad = write_config(tmp_path / "bad.toml", database, extra='[daemon]\nlog_format = "xml"\n')
    result = pytrs(bad, "config", "check")
    assert result.returncode == 2
    assert b"daemon.log_format" in result.stderr, result.stderr
    assert b"Traceback" not in result.stderr
