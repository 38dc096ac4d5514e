"""One timed wait on an event, for every loop that idles until it is woken or its time is up.

The postmaster worker waits for new inbox rows (or a fuller batch), the outbox sender for new
outbox rows, a mailbox fetcher for its next poll or the daemon's stop: each until an event is
set or a number of seconds have passed, whichever comes first. Who clears the event, and when,
stays with the caller: the worker clears its wakeup before it waits, the sender after.
"""

from __future__ import annotations

import asyncio


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set (True, at once when it already is) or `seconds` have passed
    (False). Raises nothing but cancellation."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
