"""The process-wide bound on big messages in flight: SMTP/LMTP sessions and workers share it.

Each SMTP/LMTP session buffers its DATA whole (`gateway/smtp_data.py`) and holds it, plus the
database driver's copies, until the inbox commit; a worker parsing a 25 MB mail holds its
message tree. A few big mails arriving at once over parallel connections, while a worker parses
the one before, would add up past any per-mail bound. So a session whose DATA grows past
`BIG_MESSAGE_BYTES`, and a worker whose claim is that big, take one of `[smtp]
max_concurrent_big_messages` slots and keep it until the message is stored or refused (the
worker: until its batch is done). A session waiting for a slot simply stops reading its socket:
TCP backpressure slows the client down and the session's own timeout still applies. A holder
never waits for anything a waiter holds, so no wait can deadlock. Small mail never waits.
"""

from __future__ import annotations

import asyncio

# Past this much DATA a session needs a slot; below it, mail of any count flows freely (the
# reader's own buffer holds another two lines of up to 1 MiB while the session waits).
BIG_MESSAGE_BYTES = 1024 * 1024


class BigMessageSlots:
    """The slots shared by every SMTP/LMTP listener of one daemon."""

    def __init__(self, count: int) -> None:
        self._free = asyncio.Semaphore(count)

    def slot(self) -> BigMessageSlot:
        """A slot for one DATA phase, taken only once its buffer grows big."""
        return BigMessageSlot(self._free)


class BigMessageSlot:
    """One session's claim on a slot: `take` waits for it, `release` gives it back (both
    idempotent, so the DATA reader and its caller need not agree who releases first)."""

    __slots__ = ("_free", "held")

    def __init__(self, free: asyncio.Semaphore) -> None:
        self._free = free
        self.held = False

    async def take(self) -> None:
        if not self.held:
            await self._free.acquire()
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._free.release()
