"""Ticket numbers never repeat, however many workers, daemons and processes share one database.

Two levels. The counter: many allocators (separate engines, as separate daemons have, plus OS
processes) reserve random-sized ranges at once, some committing at once, some holding the row
lock a moment as a worker's batch does, some rolling back; the committed ranges must tile
1..1000 exactly. The postmaster: 1,000 new-ticket mails shared by four workers on separate
engines become 1,000 tickets with 1,000 distinct, valid numbers, and nothing is quarantined.
The Random generator has no counter: the unique index on ``ticket.tn`` is its guard, so a clash
is forced to show that it costs a retry, never a duplicate or (once) a quarantine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import sys
import types
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config
from pytrs.config.model import DatabaseConfig
from pytrs.gateway.addresses import AddressBook
from pytrs.postmaster import worker as worker_module
from pytrs.postmaster.worker import PostmasterWorker
from pytrs.provisioning import provision
from pytrs.routing.ticket_number import TicketNumberGenerator, checksum_digit, make_generator
from pytrs.schema import inbox_repo, ticket_repo
from pytrs.schema.database import Database, create_database, utcnow
from pytrs.schema.tables import inbox, ticket_number_counter
from pytrs.vocabulary.inbox import InboxItem

from .conftest import make_config
from .helpers import inbox_states, make_mail

ROOT = Path(__file__).resolve().parents[1]
TOTAL = 1000
ENGINES = 8
PROCESSES = 2
PROCESS_SHARE = 100  # numbers each OS process allocates; the engines in this process do the rest
MAX_BATCH = 8  # small batches: more allocations, so more chances to collide


@pytest.fixture
def config(database_settings: dict[str, Any], request: pytest.FixtureRequest) -> Config:
    """The test configuration, with the generator named by indirect parametrisation.

    Two attempts only, so that the test of a stuck random source reaches the quarantine soon;
    a clean run fails no attempt anyway.
    """
    ticket = {"number_generator": getattr(request, "param", "DateChecksum")}
    return make_config(database_settings, ticket=ticket, postmaster={"max_attempts": 2})


def numbers_of(config: Config) -> TicketNumberGenerator:
    tc = config.ticket
    return make_generator(
        tc.number_generator, tc.system_id, tc.hook, tc.check_system_id, tc.min_counter_size
    )


# --- the counter --------------------------------------------------------------------------


class Budget:
    """How many numbers the allocators of one process still have to reserve."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, rng: random.Random) -> int:
        count = min(rng.randint(1, MAX_BATCH), self.left)
        self.left -= count
        return count


class _RolledBack(Exception):
    pass


async def allocate_once(db: Database, scope: str, count: int, rng: random.Random) -> int | None:
    """Reserve `count` numbers the way a worker on either engine does; None if rolled back."""
    roll = rng.random()
    if roll < 0.4:  # PostgreSQL workers: a short transaction of its own
        return await ticket_repo.allocate_counter_committed(db, scope, count)
    try:
        # SQLite workers: inside the batch transaction, which holds the lock while it writes.
        async with db.transaction() as conn:
            first = await ticket_repo.allocate_counter(conn, scope, count)
            await asyncio.sleep(rng.random() * 0.002)
            if roll > 0.9:  # the batch failed: its numbers must go back, not be handed out twice
                raise _RolledBack
        return first
    except _RolledBack:
        return None


async def allocate_share(
    db: Database, scope: str, budget: Budget, rng: random.Random
) -> list[tuple[int, int]]:
    """Allocate in random batches until `budget` is spent; the committed (first, count) pairs."""
    got = []
    while count := budget.take(rng):
        first = await allocate_once(db, scope, count, rng)
        if first is None:
            budget.left += count
        else:
            got.append((first, count))
    return got


def child_main(argument: str) -> None:
    """An OS process allocating next to the test's engines (started by `start_child`)."""
    asyncio.run(_child(**json.loads(argument)))


async def _child(database: dict[str, Any], scope: str, share: int, seed: int) -> None:
    db = create_database(DatabaseConfig(**database))
    try:
        async with db.connect():
            pass
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        ranges = await allocate_share(db, scope, Budget(share), random.Random(seed))
    finally:
        await db.close()
    print(json.dumps(ranges), flush=True)


async def start_child(config: Config, scope: str, seed: int) -> asyncio.subprocess.Process:
    argument = json.dumps(
        {
            "database": dataclasses.asdict(config.database),
            "scope": scope,
            "share": PROCESS_SHARE,
            "seed": seed,
        }
    )
    code = f"import sys; from {__name__} import child_main; child_main(sys.argv[1])"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, argument, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 30)
    assert line == b"ready\n", line
    return child


async def finish_child(child: asyncio.subprocess.Process) -> list[tuple[int, int]]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"go\n")
    out = await asyncio.wait_for(child.stdout.read(), 60)
    assert await child.wait() == 0
    return [(first, count) for first, count in json.loads(out)]


@pytest.mark.parametrize(("generator", "daily"), [("DateChecksum", True), ("AutoIncrement", False)])
async def test_concurrent_allocators_tile_the_counter(
    config: Config, db: Database, generator: str, daily: bool
) -> None:
    scope = ticket_repo.counter_scope(generator, daily, utcnow().date())
    children = [await start_child(config, scope, seed=100 + i) for i in range(PROCESSES)]
    databases = [create_database(config.database) for _ in range(ENGINES)]
    budget = Budget(TOTAL - PROCESSES * PROCESS_SHARE)
    try:
        results = await asyncio.gather(
            *(allocate_share(d, scope, budget, random.Random(i)) for i, d in enumerate(databases)),
            *(finish_child(c) for c in children),
        )
    finally:
        for database in databases:
            await database.close()

    # Sorted by their first number, the ranges laid end to end are exactly 1..TOTAL: none
    # overlaps another (no number twice) and none is missing (rolled-back ones were reused).
    ranges = sorted(r for share in results for r in share)
    assert [first + i for first, count in ranges for i in range(count)] == list(range(1, TOTAL + 1))
    assert all(results), "every allocator, in this process and the others, took part"
    async with db.connect() as conn:
        row = await conn.execute(
            select(ticket_number_counter.c.counter_uid, ticket_number_counter.c.counter)
        )
        assert row.all() == [(scope, TOTAL)]


# --- the postmaster -----------------------------------------------------------------------


@dataclasses.dataclass
class Allocations:
    """Every counter allocation the workers made: (scope, first, count, engine id)."""

    made: list[tuple[str, int, int, int]] = dataclasses.field(default_factory=list)

    def ranges(self) -> dict[str, list[tuple[int, int]]]:
        by_scope: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for scope, first, count, _engine in self.made:
            by_scope[scope].append((first, count))
        return {scope: sorted(ranges) for scope, ranges in by_scope.items()}


@pytest.fixture
def allocations(monkeypatch: pytest.MonkeyPatch) -> Iterator[Allocations]:
    """Record the workers' counter allocations (the committed variant calls this one too)."""
    record = Allocations()
    real = ticket_repo.allocate_counter

    async def spy(conn: AsyncConnection, scope: str, count: int) -> int:
        first = await real(conn, scope, count)
        record.made.append((scope, first, count, id(conn.sync_engine)))
        return first

    monkeypatch.setattr(ticket_repo, "allocate_counter", spy)
    yield record


async def fill_inbox(db: Database, count: int) -> None:
    items = [InboxItem("smtp", make_mail(subject=f"new {i}"), "support@example.com")
             for i in range(count)]  # fmt: skip
    async with db.transaction() as conn:
        await inbox_repo.store(conn, items)


async def run_workers(config: Config, count: int, batch_sizes: list[int]) -> list[int]:
    """Drain the inbox with one worker per engine, as separate daemons would; claims per worker."""
    databases = [create_database(config.database) for _ in range(count)]
    try:
        workers = []
        for i, database in enumerate(databases):
            addresses = AddressBook()
            await addresses.reload(database)
            worker = PostmasterWorker(config, database, addresses, name=f"w{i}")
            # Different batch sizes make allocations of different sizes interleave.
            worker.batch_size = batch_sizes[i % len(batch_sizes)]
            workers.append(worker)
        return list(await asyncio.gather(*(w.drain() for w in workers)))
    finally:
        for database in databases:
            await database.close()


async def ticket_numbers(db: Database) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.execute(text("SELECT tn FROM ticket"))).scalars())


def assert_valid(numbers: TicketNumberGenerator, tn: str) -> None:
    assert numbers.find(f"Re: [{numbers.hook}{tn}] new 1") == tn
    assert numbers.is_valid(tn)
    if numbers.name == "DateChecksum":
        assert checksum_digit(tn[:-1]) == int(tn[-1])


def expected_numbers(numbers: TicketNumberGenerator, allocations: Allocations) -> set[str]:
    """The numbers the recorded allocations stand for (the day is part of a daily scope)."""
    tns = set()
    for scope, first, count, _engine in allocations.made:
        _, _, day = scope.partition(":")
        on = datetime.strptime(day, "%Y%m%d").date() if day else date.today()
        tns |= {numbers.build(first + i, on) for i in range(count)}
    return tns


# SQLite runs the full 1,000 too: one mail costs about 1 ms there, the whole test a few seconds.
@pytest.mark.parametrize("config", ["DateChecksum", "AutoIncrement", "Date"], indirect=True)
async def test_four_workers_give_a_thousand_mails_distinct_numbers(
    config: Config, db: Database, allocations: Allocations
) -> None:
    await provision(db, config)
    await fill_inbox(db, TOTAL)
    claimed = await run_workers(config, 4, [7, 16, 25, 40])

    assert await inbox_states(db) == {"done": TOTAL}, claimed
    tns = await ticket_numbers(db)
    assert len(tns) == len(set(tns)) == TOTAL
    numbers = numbers_of(config)
    for tn in tns:
        assert_valid(numbers, tn)
    # Each number came from exactly one allocation, and the allocations of each scope tile
    # its counter from 1 (a clean run wastes none), so no two workers shared a range.
    assert set(tns) == expected_numbers(numbers, allocations)
    for scope, ranges in allocations.ranges().items():
        total = sum(count for _, count in ranges)
        assert [f + i for f, c in ranges for i in range(c)] == list(range(1, total + 1)), scope
    engines = {engine for *_, engine in allocations.made}
    assert len(engines) >= 2, f"the workers did not interleave: {claimed}"


@pytest.mark.parametrize("config", ["Random"], indirect=True)
async def test_four_workers_random_numbers_are_distinct(config: Config, db: Database) -> None:
    await provision(db, config)
    await fill_inbox(db, TOTAL)
    await run_workers(config, 4, [7, 16, 25, 40])

    assert await inbox_states(db) == {"done": TOTAL}
    tns = await ticket_numbers(db)
    assert len(tns) == len(set(tns)) == TOTAL
    numbers = numbers_of(config)
    for tn in tns:
        assert_valid(numbers, tn)


def fake_random(monkeypatch: pytest.MonkeyPatch, draws: Iterator[int]) -> None:
    """Make the worker's Random generator draw `draws` (only in the worker module)."""
    monkeypatch.setattr(
        worker_module, "secrets", types.SimpleNamespace(randbelow=lambda _n: next(draws))
    )


async def attempts_and_states(db: Database) -> list[tuple[int, str]]:
    async with db.connect() as conn:
        rows = await conn.execute(select(inbox.c.attempts, inbox.c.state).order_by(inbox.c.id))
        return [(a, s) for a, s in rows]


@pytest.mark.parametrize("config", ["Random"], indirect=True)
async def test_random_clash_in_a_batch_gets_fresh_numbers(
    config: Config, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await provision(db, config)
    # The first ticket draws 7; then a batch of three draws 7 (an existing ticket), 7 (its own
    # neighbour) and 8. The batch fails on the unique index and is re-run mail by mail, each
    # drawing again.
    fake_random(monkeypatch, itertools.chain([7, 7, 7, 8], itertools.count(9)))
    await fill_inbox(db, 1)
    await run_workers(config, 1, [10])
    await fill_inbox(db, 3)
    await run_workers(config, 1, [10])

    tns = await ticket_numbers(db)
    assert sorted(tns) == ["10" + f"{n:010d}" for n in (7, 9, 10, 11)]
    # The re-run happens within the same claim: no extra attempt, nothing quarantined.
    assert await attempts_and_states(db) == [(1, "done")] * 4


@pytest.mark.parametrize("config", ["Random"], indirect=True)
async def test_random_clash_alone_costs_an_attempt_and_a_stuck_source_quarantines(
    config: Config, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await provision(db, config)
    # A batch of one that clashes is retried after the backoff with a new draw ...
    fake_random(monkeypatch, iter([7, 7, 8]))
    await fill_inbox(db, 1)
    await run_workers(config, 1, [10])
    await fill_inbox(db, 1)
    await run_workers(config, 1, [10])
    assert sorted(await ticket_numbers(db)) == ["100000000007", "100000000008"]
    assert await attempts_and_states(db) == [(1, "done"), (2, "done")]

    # ... and a source that keeps repeating itself ends in the quarantine (after max_attempts
    # = 2 here), with the mail kept: a duplicate number is never stored.
    fake_random(monkeypatch, itertools.repeat(7))
    await fill_inbox(db, 1)
    await run_workers(config, 1, [10])
    assert sorted(await ticket_numbers(db)) == ["100000000007", "100000000008"]
    assert (await attempts_and_states(db))[-1] == (2, "quarantined")


@pytest.mark.parametrize("config", ["AutoIncrement", "DateChecksum"], indirect=True)
async def test_counter_behind_existing_tickets_skips_taken_numbers(
    config: Config, db: Database
) -> None:
    """A counter reset (or a database taken over from Znuny) must not block new tickets: taken
    numbers are skipped, on SQLite (counter rolled back with a failed batch) as on PostgreSQL."""
    await provision(db, config)
    await fill_inbox(db, 3)
    await run_workers(config, 1, [10])
    async with db.transaction() as conn:
        await conn.execute(text("DELETE FROM ticket_number_counter"))
    await fill_inbox(db, 4)
    await run_workers(config, 1, [10])
    numbers = await ticket_numbers(db)
    assert len(numbers) == len(set(numbers)) == 7
    assert await attempts_and_states(db) == [(1, "done")] * 7
