"""The sender as a service: crashes and restarts, two senders on one outbox, the daemon."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from pytrs.config import Config
from pytrs.daemon import Daemon, StartupError
from pytrs.outbound.sender import OutboxSender
from pytrs.schema.database import Database, create_database, utcnow
from pytrs.schema.tables import outbox

from ..conftest import RunningDaemon, make_config, wait_until
from ..servers.relay import RecordingRelay
from .conftest import LOOP_SECRET, enqueue, outbound_config, rows, states

ROOT = Path(__file__).resolve().parents[2]


async def run_until(sender: OutboxSender, relay: RecordingRelay, count: int) -> None:
    """Run `sender` as a service until the relay has `count` mails, then stop it cleanly."""
    task = asyncio.create_task(sender.run())
    try:
        await relay.wait_for(count, within=20)
    finally:
        sender.stop()
        await asyncio.wait_for(task, 10)


def assert_each_sent_once(relay: RecordingRelay, found: list[Any]) -> None:
    sent = Counter(relay.message_ids())
    assert sent == Counter({row.message_id: 1 for row in found}), sent
    assert {row.state for row in found} == {"sent"}


async def test_a_cancelled_sender_gives_back_what_it_did_not_send(
    db: Database, sender_config: Config, relay: RecordingRelay
) -> None:
    relay.mail_faults.append("hold")  # the first transaction hangs at MAIL FROM
    await enqueue(db, sender_config, 3)
    first = OutboxSender(sender_config, db)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(relay.held.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    in_hand, *rest = await rows(db)
    # The mail in hand keeps its lease (it might have reached the relay); the others are
    # back in the queue at once, their attempt not counted.
    assert (in_hand.state, in_hand.attempts) == ("sending", 1)
    assert [(r.state, r.attempts) for r in rest] == [("pending", 0), ("pending", 0)]
    relay.released.set()
    # Its lease runs out (made to, here), and a new sender delivers everything once.
    async with db.transaction() as conn:
        await conn.execute(update(outbox).values(lease_until=utcnow()))
    await run_until(OutboxSender(sender_config, db), relay, 3)
    assert_each_sent_once(relay, await rows(db))


async def test_a_killed_sender_process_loses_nothing_and_sends_nothing_twice(
    db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    settings = {
        "database": database_settings,
        "outbound": {
            "relay": relay.address, "loop_secret": LOOP_SECRET, "batch_size": 10,
            "timeout_seconds": 5.0, "lease_seconds": 600.0, "poll_interval_seconds": 0.05,
            "helo_name": "pytrs.test",
        },
    }  # fmt: skip
    config = make_config(database_settings, outbound=settings["outbound"])
    await enqueue(db, config, 5)
    # The child sends two mails, then hangs in the third transaction and is killed there.
    relay.mail_faults.extend(["", "", "hold"])
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.outbound.sender_child", json.dumps(settings), cwd=ROOT
    )
    try:
        await asyncio.wait_for(relay.held.wait(), 20)
        await wait_until(lambda: _count(db, "sent", 2), within=10)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    relay.released.set()
    found = await rows(db)
    assert [r.state for r in found] == ["sent", "sent", "sending", "sending", "sending"]
    # A restarted sender on this host takes over the dead one's claims at once (no lease wait).
    await run_until(OutboxSender(config, db), relay, 5)
    assert_each_sent_once(relay, await rows(db))


async def _count(db: Database, state: str, n: int) -> bool:
    return (await states(db)).get(state, 0) >= n


async def _claimed_or_done(db: Database, task: asyncio.Task[int]) -> bool:
    return task.done() or await _count(db, "sending", 1)


async def test_a_claim_that_waited_for_the_database_sends_nothing_past_its_lease(
    db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    # A short lease, a slow relay (0.15 s per mail), and a claim that waits 1.8 s of its 2 s
    # lease for a write lock another transaction holds (SQLite's writers queue; on PostgreSQL
    # a table lock stands in for it). The lease counts from the claim's start, so what is left
    # of it is too short to send in: the claim must give its rows back rather than send them
    # while a second sender takes them over once the lease has ended.
    config = outbound_config(database_settings, relay, lease_seconds=2.0, timeout_seconds=0.5)
    relay.data_seconds = 0.15
    await enqueue(db, config, 10)
    engines = [create_database(config.database) for _ in range(3)]
    locker, first, second = engines
    locked = asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with locker.transaction() as conn:
            if locker.is_postgresql:
                await conn.execute(text(f"LOCK TABLE {outbox.name} IN EXCLUSIVE MODE"))
            locked.set()
            await asyncio.sleep(1.8)

    holder = asyncio.create_task(hold_the_write_lock())
    try:
        await asyncio.wait_for(locked.wait(), 10)
        waiting = asyncio.create_task(OutboxSender(config, first).run_once())
        # The second starts once the first has its claim (or has given it back already).
        await wait_until(lambda: _claimed_or_done(db, waiting), within=10)
        await run_until(OutboxSender(config, second, name="second"), relay, 10)
        await asyncio.wait_for(waiting, 10)
        await holder
    finally:
        for engine in engines:
            await engine.close()
    assert_each_sent_once(relay, await rows(db))


async def test_two_senders_on_two_engines_never_send_a_row_twice(
    db: Database, database_settings: dict[str, Any], relay: RecordingRelay
) -> None:
    config = outbound_config(database_settings, relay, connections=2, batch_size=4)
    await enqueue(db, config, 60)
    engines = [create_database(config.database) for _ in range(2)]
    senders = [OutboxSender(config, engine, name=f"sender-{i}") for i, engine in enumerate(engines)]
    tasks = [asyncio.create_task(s.run()) for s in senders]
    try:
        await relay.wait_for(60, within=30)
    finally:
        for s in senders:
            s.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        for engine in engines:
            await engine.close()
    found = await rows(db)
    assert_each_sent_once(relay, found)
    assert {r.attempts for r in found} == {1}  # nobody claimed a row another had
    assert len({r.claimed_by for r in found}) == 1  # one process, four lanes
    # Connections are reused: at most one per lane (two senders × two), not one per mail. A
    # lane that never got a row (one sender can take most of them) never connects.
    assert 1 <= relay.connections <= 4


async def test_the_daemon_runs_the_sender_and_wakes_it(
    db: Database,
    database_settings: dict[str, Any],
    relay: RecordingRelay,
    start_daemon: Any,
) -> None:
    # A long poll interval: only the wake-up can deliver within the test's patience.
    config = outbound_config(database_settings, relay, poll_interval_seconds=60.0)
    running: RunningDaemon = await start_daemon(config)
    await asyncio.sleep(0.2)  # the sender has looked once and is waiting
    await enqueue(db, config, 2)
    running.daemon.wake_sender(2)
    await relay.wait_for(2, within=5)
    assert await running.stop() == 0
    assert await states(db) == {"sent": 2}


async def test_an_unreadable_dkim_key_stops_the_start(
    db: Database, database_settings: dict[str, Any], relay: RecordingRelay, tmp_path: Path
) -> None:
    config = make_config(
        database_settings,
        outbound={"relay": relay.address},
        dkim_keys=[
            {"domain": "example.com", "selector": "s1", "private_key_file": str(tmp_path / "no")}
        ],
    )
    with pytest.raises(StartupError, match=r"dkim_keys\[0\]\.private_key_file: cannot read"):
        await Daemon(config).run()
