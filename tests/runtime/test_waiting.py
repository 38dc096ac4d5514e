"""The one timed wait every idle loop uses: woken by its event, by its timeout, and by a stop.

Real events and real time in the test's loop; the last test stops a real postmaster worker
that idles on a long poll interval.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.runtime.waiting import wait_for_event
from pytrs.schema.database import Database


async def test_an_event_set_meanwhile_wakes_the_wait() -> None:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, event.set)
    started = loop.time()
    assert await wait_for_event(event, 10.0) is True
    assert loop.time() - started < 5.0


async def test_an_event_already_set_does_not_wait() -> None:
    event = asyncio.Event()
    event.set()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await wait_for_event(event, 10.0) is True
    assert loop.time() - started < 1.0
    assert event.is_set()  # the caller decides when to clear it


async def test_the_timeout_ends_the_wait() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await wait_for_event(asyncio.Event(), 0.1) is False
    assert loop.time() - started >= 0.09


async def test_cancelling_the_waiter_is_not_swallowed() -> None:
    waiting = asyncio.ensure_future(wait_for_event(asyncio.Event(), 10.0))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_stop_wakes_an_idle_worker(config: Config, db: Database) -> None:
    """A worker idling on a 60 s poll interval returns from run() soon after stop()."""
    slow = dataclasses.replace(
        config, postmaster=dataclasses.replace(config.postmaster, poll_interval_seconds=60.0)
    )
    addresses = AddressBook()
    await addresses.reload(db)
    worker = PostmasterWorker(slow, db, addresses)
    running = asyncio.ensure_future(worker.run())
    await asyncio.sleep(0.3)  # the inbox is empty: it is waiting now
    assert not running.done()
    worker.stop()
    async with asyncio.timeout(10):
        await running
