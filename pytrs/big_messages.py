"""The gateway-wide bound on big messages in flight over SMTP and LMTP.

Each session buffers its DATA whole (`smtp_data`) and holds it, plus the database driver's
copies, until the inbox commit: a few 25 MB mails arriving at once over parallel connections
would add up past any per-mail bound. A session whose DATA grows past `BIG_MESSAGE_BYTES` must
take one of `[smtp] max_concurrent_big_messages` slots and keeps it until its message is stored
or refused. A session waiting for a slot simply stops reading its socket: TCP backpressure
slows the client down, the session's own timeout still applies, and a waiting session holds
nothing another one needs, so no wait can deadlock. Small mail never waits.
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
