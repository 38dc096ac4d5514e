"""Several workers, each with its own engine (as several daemons would be), share one inbox:
every message becomes exactly one article, ticket numbers never repeat, threads stay together."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from sqlalchemy import text

from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.schema.database import create_database
from pytrs.vocabulary.inbox import InboxItem

from .helpers import inbox_states, make_mail, unique_id


async def test_three_workers_share_the_inbox(config: Any, db: Any) -> None:
    await provision(db, config)
    rng = random.Random(7)
    roots = [unique_id() for _ in range(60)]
    raws = [make_mail(subject=f"thread {i}", message_id=m) for i, m in enumerate(roots)]
    # Replies only reference their root, so they must land on its ticket whichever worker
    # takes them; they are stored after all roots, as mail arrives in time order.
    replies = [
        make_mail(subject="Re: something", references=rng.choice(roots), message_id=unique_id())
        for _ in range(140)
    ]
    async with db.transaction() as conn:
        await inbox_repo.store(conn, [InboxItem("smtp", r, "support@example.com") for r in raws])
    async with db.transaction() as conn:
        await inbox_repo.store(conn, [InboxItem("smtp", r, "support@example.com") for r in replies])

    databases = [create_database(config.database) for _ in range(3)]
    try:
        workers = []
        for i, database in enumerate(databases):
            addresses = AddressBook()
            await addresses.reload(database)
            worker = PostmasterWorker(config, database, addresses, name=f"w{i}")
            worker.batch_size = 16  # small batches so the workers interleave
            workers.append(worker)
        claimed = await asyncio.gather(*(w.drain() for w in workers))
        if db.is_postgresql:  # SKIP LOCKED lets them work side by side (SQLite serialises)
            assert sum(1 for c in claimed if c) >= 2, claimed
        assert await inbox_states(db) == {"done": 200}
    finally:
        for database in databases:
            await database.close()

    async with db.connect() as conn:
        tns = (await conn.execute(text("SELECT tn FROM ticket"))).scalars().all()
        per_message = Counter(
            (await conn.execute(text("SELECT a_message_id FROM article_data_mime"))).scalars()
        )
        tickets_per_thread = (
            await conn.execute(
                text(
                    "SELECT count(DISTINCT a.ticket_id) FROM article a "
                    "JOIN article_data_mime m ON m.article_id = a.id"
                )
            )
        ).scalar_one()
    assert len(tns) == len(set(tns)) == 60
    assert len(per_message) == 200 and max(per_message.values()) == 1
    assert tickets_per_thread == 60


async def test_reply_committed_before_its_parent_joins_its_ticket(config: Any, db: Any) -> None:
    await provision(db, config)
    parent_id = unique_id()
    reply = make_mail(subject="Re: order 17", references=parent_id, message_id=unique_id())
    parent = make_mail(subject="order 17", message_id=parent_id)
    async with db.transaction() as conn:  # the reply's session happened to commit first
        await inbox_repo.store(conn, [InboxItem("smtp", reply, "support@example.com")])
        await inbox_repo.store(conn, [InboxItem("smtp", parent, "support@example.com")])
    addresses = AddressBook()
    await addresses.reload(db)
    await PostmasterWorker(config, db, addresses).drain()
    async with db.connect() as conn:
        tickets = (await conn.execute(text("SELECT title FROM ticket"))).scalars().all()
        articles = (await conn.execute(text("SELECT count(*) FROM article"))).scalar_one()
    assert tickets == ["order 17"] and articles == 2
