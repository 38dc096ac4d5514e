"""The group commit at shutdown: a commit under way ends before `close()` returns, so a session
waiting for it gets its inbox id (its 250) instead of being cut when the writer is cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytrs.gateway import inbox_writer
from pytrs.gateway.inbox_writer import InboxWriter
from pytrs.schema import inbox_repo
from pytrs.vocabulary.inbox import InboxItem

from ..helpers import inbox_states, make_mail


async def test_close_lets_the_commit_under_way_end_before_the_writer_is_cancelled(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = asyncio.Event()
    store = inbox_repo.store

    async def slow_store(conn: Any, items: Any) -> list[int]:
        started.set()
        await asyncio.sleep(0.3)  # a commit that takes a while (a loaded database)
        return await store(conn, items)

    monkeypatch.setattr(inbox_writer.inbox_repo, "store", slow_store)
    writer = InboxWriter(db)
    running = asyncio.create_task(writer.run())
    session = asyncio.create_task(
        writer.store([InboxItem("smtp", make_mail(), recipient="support@example.com")])
    )
    await started.wait()
    await writer.close()  # as the daemon's shutdown does, then it cancels the writer
    running.cancel()
    (stored,) = await asyncio.wait_for(session, 10)
    assert stored > 0
    assert (await inbox_states(db)) == {"pending": 1}
