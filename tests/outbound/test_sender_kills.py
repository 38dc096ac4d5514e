"""A sender process killed with SIGKILL at random moments, again and again.

The promise under test (README, "Outbound mail"): a kill sends at most one mail per relay
connection a second time — the one whose 250 had arrived, or whose DATA had been sent, but
whose outcome was not committed yet — and loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pytrs.schema.database import Database
from pytrs.schema.tables import outbox

from ..conftest import make_config, wait_until
from ..servers.relay import RecordingRelay
from .conftest import LOOP_SECRET, enqueue, rows

ROOT = Path(__file__).resolve().parents[2]
MAILS = 200
KILLS = 20
CONNECTIONS = 3


async def test_each_kill_sends_at_most_one_mail_per_connection_twice(
    db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    outbound = {
        "relay": relay.address, "loop_secret": LOOP_SECRET, "connections": CONNECTIONS,
        "batch_size": 5, "timeout_seconds": 5.0, "lease_seconds": 600.0,
        "poll_interval_seconds": 0.05, "helo_name": "pytrs.test",
    }  # fmt: skip
    config = make_config(database_settings, outbound=outbound)
    await enqueue(db, config, MAILS)
    chance = random.Random()
    exposed: list[int] = []  # per kill: copies received that no committed outcome records
    # Each sender is a process forked by a fork server: a Python start-up per kill would make
    # this test slow. The kill is still SIGKILL to a sender process in the middle of its work.
    senders = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.outbound.sender_child",
        json.dumps({"database": database_settings, "outbound": outbound}),
        "--fork",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(KILLS):
            start = len(relay.received)
            await _tell(senders, "start")
            # Kill while it is sending: after its first mail arrived, at a random moment.
            await relay.wait_for(start + 1, within=20)
            await asyncio.sleep(chance.uniform(0, 0.04))
            await _tell(senders, "kill")
            # Every copy the dead sender got to the relay is counted before the next one starts.
            await wait_until(relay.all_closed, within=10)
            sent = await _sent(db)
            exposed.append(sum(r.message_id not in sent for r in relay.received[start:]))
            if len(sent) == MAILS:
                break
        # A last sender, left alone, delivers the rest.
        await _tell(senders, "start")
        await wait_until(lambda: _all_sent(db), within=20)
    finally:
        assert senders.stdin is not None
        senders.stdin.close()  # the fork server kills its sender and ends
        await asyncio.wait_for(senders.wait(), 10)
    found = await rows(db)
    copies = Counter(relay.message_ids())
    assert {r.state for r in found} == {"sent"}
    assert set(copies) == {r.message_id for r in found}  # everything arrived
    extra = sum(copies.values()) - len(copies)
    print(f"extra copies per kill: {exposed} (total {extra}, {len(exposed)} kills)")
    # Every copy not recorded at a kill was sent again, and nothing else was.
    assert extra == sum(exposed)
    assert max(exposed) <= CONNECTIONS, exposed


async def _tell(senders: asyncio.subprocess.Process, command: str) -> None:
    """Have the fork server start or kill a sender; returns once it is done."""
    assert senders.stdin is not None and senders.stdout is not None
    senders.stdin.write(f"{command}\n".encode())
    await senders.stdin.drain()
    async with asyncio.timeout(20):
        assert (await senders.stdout.readline()).decode().strip() == command


async def _sent(db: Database) -> set[str]:
    async with db.connect() as conn:
        found = await conn.execute(select(outbox.c.message_id).where(outbox.c.state == "sent"))
        return set(found.scalars())


async def _all_sent(db: Database) -> bool:
    return len(await _sent(db)) == MAILS
