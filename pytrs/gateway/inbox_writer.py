"""Group commit of accepted mail into the durable inbox (the gateway's only write path).

Every SMTP/LMTP session hands its message here and waits; a single writer task gathers what
arrived meanwhile into one transaction, so one fsync acknowledges many messages. A caller is
answered only after its rows are committed; if the commit fails every waiting caller gets a
StorageError (→ "451 4.3.0", the MTA retries) and nothing is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from pytrs.schema import inbox_repo
from pytrs.schema.database import Database, StorageError
from pytrs.schema.inbox_repo import InboxItem

log = logging.getLogger(__name__)

_Pending = tuple[Sequence[InboxItem], asyncio.Future[None]]


class InboxWriter:
    """Durably stores InboxItems in batches; `store()` returns once they are committed."""

    def __init__(
        self,
        db: Database,
        *,
        batch_max: int = 256,
        delay_ms: float = 0.0,
        on_commit: Callable[[int], None] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._db = db
        self._batch_max = batch_max
        self._delay = delay_ms / 1000.0
        self._on_commit = on_commit
        self._timeout = timeout
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._closed = False

    async def store(self, items: Sequence[InboxItem]) -> None:
        """Store `items` in one transaction with others; raises StorageError when it failed."""
        if self._closed:
            raise StorageError("inbox writer is shutting down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((items, future))
        await future

    async def run(self) -> None:
        """The writer task: commit what is waiting, batch after batch, until cancelled."""
        while True:
            batch = [await self._queue.get()]
            if self._delay and self._queue.empty():
                # A tiny wait lets concurrent sessions share the commit under load.
                await asyncio.sleep(self._delay)
            while not self._queue.empty() and len(batch) < self._batch_max:
                batch.append(self._queue.get_nowait())
            await self._commit(batch)
            # Not kept while waiting for the next one: the batch holds whole mails.
            del batch

    async def close(self) -> None:
        """Refuse new work and commit what is already waiting."""
        self._closed = True
        while not self._queue.empty():
            batch: list[_Pending] = []
            while not self._queue.empty() and len(batch) < self._batch_max:
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        items = [item for pending_items, _ in batch for item in pending_items]
        try:
            async with asyncio.timeout(self._timeout):
                async with self._db.transaction() as conn:
                    await inbox_repo.store(conn, items)
        except Exception as exc:  # every storage failure becomes a temporary failure
            log.error("inbox commit of %d message(s) failed: %s", len(batch), exc)
            error = StorageError(str(exc))
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        if self._on_commit:
            self._on_commit(len(items))
