"""`WebUser`: queue permissions as Znuny keeps them, read for each request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from pytrs.schema import agent_access
from pytrs.schema.database import Database
from pytrs.schema.tables import queue
from pytrs.web.access import WebUser


async def _queue_ids(db: Database) -> dict[str, int]:
    async with db.connect() as conn:
        return dict((await conn.execute(select(queue.c.name, queue.c.id))).all())


async def test_agent_reads_rw_and_ro_queues_and_writes_rw_only(
    make_user: Callable[..., Any], make_queue: Callable[..., Any], db: Database
) -> None:
    for name in ("Support", "Sales", "Billing"):
        await make_queue(name)
    user_id = await make_user("alice", queues={"Support": "rw", "Sales": "ro"})
    ids = await _queue_ids(db)
    account = await agent_access.by_id(db, user_id)
    assert account is not None
    user = WebUser.from_account(account)
    assert not user.is_admin
    assert user.can_read(ids["Support"]) and user.can_write(ids["Support"])
    assert user.can_read(ids["Sales"]) and not user.can_write(ids["Sales"])
    for name in ("Billing", "Raw"):
        assert not user.can_read(ids[name]) and not user.can_write(ids[name])
    assert user.readable == {ids["Support"], ids["Sales"]}
    assert user.writable == {ids["Support"]}
    with pytest.raises(TypeError):
        user.queues[ids["Billing"]] = "rw"  # type: ignore[index]


async def test_admin_reads_and_writes_every_queue(
    make_user: Callable[..., Any], db: Database
) -> None:
    user_id = await make_user("root", role="admin", queues={})
    account = await agent_access.by_id(db, user_id)
    assert account is not None
    user = WebUser.from_account(account)
    every = set((await _queue_ids(db)).values())
    assert user.is_admin and user.readable == every and user.writable == every


async def test_the_system_user_never_signs_in(db: Database) -> None:
    assert await agent_access.by_id(db, 1) is None
    assert await agent_access.by_login(db, "root@localhost") is None
