"""Several workers, each with its own engine (as several daemons would be), share one inbox:
every message becomes exactly one article, ticket numbers never repeat, threads stay together,
and a reply (or a copy) whose parent is in another worker's uncommitted batch waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.util import await_

from pytrs.config import Config
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.schema import inbox_repo
from pytrs.schema.database import Database, create_database
from pytrs.vocabulary.inbox import InboxItem

from .conftest import engine_name, make_config
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


# --- a parent in another worker's batch, not committed yet --------------------------------
# On PostgreSQL each statement sees what was committed when it started: a batch that commits
# while another worker routes its reply becomes visible half-way through that worker's reads.
# SQLite takes its write lock at BEGIN, so no commit can land inside a batch's transaction,
# nor can a second batch be claimed while one is uncommitted: these cases cannot arise there.
ONLY_POSTGRESQL = pytest.mark.skipif(
    engine_name() != "postgresql", reason="SQLite serialises batches (BEGIN IMMEDIATE)"
)


class HeldCommit:
    """Holds a worker's processing transaction just before its COMMIT (after it wrote its
    articles) until `release()`: a batch claimed and applied by one worker, not committed yet."""

    def __init__(self, database: Database) -> None:
        self.holding = asyncio.Event()
        self._released = asyncio.Event()
        self._wrote = False
        event.listen(database.engine.sync_engine, "after_cursor_execute", self._after)
        event.listen(database.engine.sync_engine, "commit", self._commit)

    def release(self) -> None:
        self._released.set()

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self._wrote = self._wrote or statement.startswith("INSERT INTO article ")

    def _commit(self, _conn: Any) -> None:
        if self._wrote:  # the processing transaction, not the claim before it
            self._wrote = False
            self.holding.set()
            await_(self._released.wait())  # inside SQLAlchemy's greenlet: the loop runs on


@dataclass
class FirstBatchHeld:
    """The first worker's batch (its `run_once`), held before its COMMIT; the second worker
    and its engine."""

    held: HeldCommit
    first_batch: asyncio.Task[int]
    second: PostmasterWorker
    second_database: Database

    async def commit_first(self) -> None:
        self.held.release()
        assert await self.first_batch == 1


@contextlib.asynccontextmanager
async def first_batch_held(config: Config) -> AsyncIterator[FirstBatchHeld]:
    """Two workers with engines of their own and batches of one mail: the first claims the
    oldest mail and applies it, and waits before its COMMIT until told."""
    databases = [create_database(config.database) for _ in range(2)]
    workers = []
    for i, database in enumerate(databases):
        addresses = AddressBook()
        await addresses.reload(database)
        worker = PostmasterWorker(config, database, addresses, name=f"w{i}")
        worker.batch_size = 1
        workers.append(worker)
    held = HeldCommit(databases[0])
    first_batch = asyncio.create_task(workers[0].run_once())
    try:
        await asyncio.wait_for(held.holding.wait(), 10)
        yield FirstBatchHeld(held, first_batch, workers[1], databases[1])
    finally:
        held.release()  # whatever failed, the first worker is not left hanging
        await asyncio.wait_for(asyncio.gather(first_batch, return_exceptions=True), 10)
        for database in databases:
            await database.close()


def after_first(database: Database, matches: Callable[[str], bool], then: Any) -> None:
    """Await `then()` right after the first statement of `database` that `matches`, in the
    middle of the transaction that statement belongs to."""
    fired = False

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal fired
        if not fired and matches(statement):
            fired = True
            await_(then())

    event.listen(database.engine.sync_engine, "after_cursor_execute", after)


async def _committed_while_the_second_routes(
    config: Config, matches: Callable[[str], bool]
) -> None:
    """The first worker's batch (the oldest mail) commits right after the second worker,
    routing the next mail, ran the statement that `matches`; then the second drains."""
    async with first_batch_held(config) as run:
        after_first(run.second_database, matches, run.commit_first)
        assert await run.second.run_once() == 1
        assert run.first_batch.done()  # the statement ran, the commit landed inside
        await run.second.drain()


def _looks_up_articles(sql: str) -> bool:
    return "a_message_id_md5" in sql  # known_repo: articles by Message-ID


def _looks_up_stored_copies(sql: str) -> bool:
    return "dedup_key" in sql and "article_data_mime" in sql  # known_repo: earlier copies


async def _store_one_by_one(db: Database, *raws: bytes) -> None:
    for raw in raws:  # in arrival order, each committed on its own
        async with db.transaction() as conn:
            await inbox_repo.store(conn, [InboxItem("smtp", raw, "support@example.com")])


def _parent_and_reply() -> tuple[bytes, bytes]:
    parent_id = unique_id()
    parent = make_mail(subject="order 17", message_id=parent_id)
    reply = make_mail(subject="Re: order 17", references=parent_id, message_id=unique_id())
    return parent, reply


async def _tickets_and_articles(db: Database) -> tuple[int, int]:
    async with db.connect() as conn:
        tickets = (await conn.execute(text("SELECT count(*) FROM ticket"))).scalar_one()
        articles = (await conn.execute(text("SELECT count(*) FROM article"))).scalar_one()
    return tickets, articles


@ONLY_POSTGRESQL
async def test_reply_waits_for_a_parent_in_another_workers_uncommitted_batch(
    config: Config, db: Database
) -> None:
    await provision(db, config)
    await _store_one_by_one(db, *_parent_and_reply())
    async with first_batch_held(config) as run:
        # The parent is claimed and applied, not committed: the reply waits, uncounted.
        assert await run.second.run_once() == 1
        assert await inbox_states(db) == {"pending": 2}
        await run.commit_first()
        await run.second.drain()
    assert await _tickets_and_articles(db) == (1, 2)
    assert await inbox_states(db) == {"done": 2}


@ONLY_POSTGRESQL
async def test_reply_joins_a_parent_committed_while_it_is_routed(
    config: Config, db: Database
) -> None:
    # The parent's batch commits just after the reply's worker looked the parent's article up
    # (not there yet). The parent was still in the inbox when that batch began: the reply must
    # not open a ticket of its own (test_three_workers_share_the_inbox's 61 or 62 tickets).
    await provision(db, config)
    await _store_one_by_one(db, *_parent_and_reply())
    await _committed_while_the_second_routes(config, _looks_up_articles)
    assert await _tickets_and_articles(db) == (1, 2)
    assert await inbox_states(db) == {"done": 2}


@ONLY_POSTGRESQL
async def test_copy_joins_a_first_copy_committed_while_it_is_routed(
    database_settings: dict[str, Any], db: Database
) -> None:
    # One mail to two addresses of one queue: the first copy's batch commits just after the
    # second copy's worker looked for stored copies (none yet). One ticket, one article.
    addresses = ("support@example.com", "help@example.com")
    config = make_config(
        database_settings, system_addresses=[{"address": a, "queue": "Support"} for a in addresses]
    )
    await provision(db, config)
    raw = make_mail(to=", ".join(addresses))
    async with db.transaction() as conn:
        await inbox_repo.store(conn, [InboxItem("smtp", raw, a) for a in addresses])
    await _committed_while_the_second_routes(config, _looks_up_stored_copies)
    assert await _tickets_and_articles(db) == (1, 1)
    assert await inbox_states(db) == {"done": 1, "duplicate": 1}
