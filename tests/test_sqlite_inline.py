"""The in-loop SQLite connection (`pytrs/schema/sqlite_inline.py`) under the engine.

It must give what aiosqlite gave for every operation pytrs uses, wait for another
connection's lock without blocking the event loop, fail as before when the wait is too long,
keep the pragmas durability rests on, and close without ever hanging. Each test uses SQLite
files of its own, whichever engine the suite runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from pytrs.config import parse_config
from pytrs.schema import database as database_module
from pytrs.schema import sqlite_inline
from pytrs.schema.database import BIG_BLOB_BYTES, Database, create_database, reason
from pytrs.schema.sqlite_inline import InlineConnection

metadata = MetaData()
things = Table(
    "things", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), unique=True, nullable=False),
    Column("body", LargeBinary),
    Column("n", Integer),
)  # fmt: skip


def sqlite_database(path: Path) -> Database:
    config = parse_config({"database": {"url": f"sqlite+aiosqlite:///{path}"}}, environ={})
    return create_database(config.database)


def aiosqlite_database(path: Path) -> Database:
    """The engine as it was before: aiosqlite's connections, set up the same way."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", pool_size=1, max_overflow=0, pool_timeout=120
    )
    database_module._set_up_sqlite_connections(engine)
    return Database(engine)


@pytest.fixture
async def inline(tmp_path: Path) -> AsyncIterator[Database]:
    db = sqlite_database(tmp_path / "inline.db")
    try:
        yield db
    finally:
        await db.close()


async def driver_connection(db: Database) -> InlineConnection:
    async with db.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
    assert isinstance(driver, InlineConnection)
    return driver


async def every_operation(db: Database) -> list[Any]:
    """What pytrs asks of the driver, each outcome written down for comparison."""
    seen: list[Any] = []
    big = bytes(range(256)) * (BIG_BLOB_BYTES // 256 + 100)
    async with db.transaction() as conn:
        await conn.run_sync(metadata.create_all)
    async with db.transaction() as conn:
        result = await conn.execute(insert(things).values(name="one", body=b"\x00\xff", n=1))
        seen.append(("insert", result.inserted_primary_key, result.rowcount))
        result = await conn.execute(
            insert(things).returning(things.c.id, things.c.name), {"name": "two", "n": 2}
        )
        seen.append(("returning", result.all()))
        rows = [{"name": f"many-{i}", "body": None, "n": i} for i in range(3, 8)]
        seen.append(("executemany", (await conn.execute(insert(things), rows)).rowcount))
        result = await conn.execute(insert(things).values(name="big", body=big, n=8))
        seen.append(("big", result.inserted_primary_key))
        named = await conn.exec_driver_sql(
            "SELECT name, n FROM things WHERE n > :low ORDER BY n", {"low": 5}
        )
        seen.append(("named", named.all()))
    async with db.connect() as conn:
        body = await conn.scalar(select(things.c.body).where(things.c.name == "big"))
        seen.append(("big read back", body == big))
        everything = select(things.c.id, things.c.name, things.c.n).order_by(things.c.id)
        seen.append(("all", (await conn.execute(everything)).all()))
        partitions = (await conn.execute(select(things.c.n).order_by(things.c.n))).partitions(3)
        seen.append(("partitions", [list(p) for p in partitions]))
        streamed = await conn.stream(select(things.c.name).order_by(things.c.n.desc()))
        seen.append(("stream", [row async for row in streamed]))
        matched = select(things.c.name).where(things.c.name.regexp_match("^many-[35]$"))
        seen.append(("regexp", (await conn.execute(matched)).scalars().all()))
        await conn.rollback()
    async with db.transaction() as conn:
        raised = update(things).where(things.c.n < 4).values(n=things.c.n + 100)
        seen.append(("update", (await conn.execute(raised)).rowcount))
        dropped = delete(things).where(things.c.n > 100)
        seen.append(("delete", (await conn.execute(dropped)).rowcount))
    with pytest.raises(IntegrityError) as refused:
        async with db.transaction() as conn:
            await conn.execute(insert(things).values(name="big"))
    seen.append(("integrity", type(refused.value.orig).__name__, reason(refused.value)))
    with pytest.raises(OperationalError) as wrong:
        async with db.transaction() as conn:
            await conn.execute(insert(things).values(name="rolled back"))
            await conn.exec_driver_sql("SELEC 1")
    seen.append(("syntax", type(wrong.value.orig).__name__, reason(wrong.value)))
    autocommit = await db.engine.connect()
    try:
        conn = await autocommit.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(insert(things).values(name="autocommitted", n=9))
        autocommitted = select(things.c.n).where(things.c.name == "autocommitted")
        seen.append(("autocommit", await conn.scalar(autocommitted)))
    finally:
        await autocommit.close()
    async with db.connect() as conn:
        names = (await conn.execute(select(things.c.name).order_by(things.c.name))).scalars()
        seen.append(("end", names.all()))
        pragmas = [
            (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys")
        ]
        seen.append(("pragmas", pragmas))
    return seen


async def test_same_results_as_aiosqlite(tmp_path: Path) -> None:
    before, after = aiosqlite_database(tmp_path / "a.db"), sqlite_database(tmp_path / "b.db")
    try:
        expected, got = await every_operation(before), await every_operation(after)
    finally:
        await before.close()
        await after.close()
    assert got == expected
    assert ("pragmas", ["wal", 2, 1]) in got  # WAL, synchronous=FULL, foreign keys on


async def test_statements_on_the_loop_commit_and_big_binds_in_a_thread(inline: Database) -> None:
    driver = await driver_connection(inline)
    threads: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()

    def trace(sql: str) -> None:
        threads.append((sql.split(None, 1)[0].upper(), threading.get_ident() == loop_thread))

    driver._conn.set_trace_callback(trace)
    async with inline.transaction() as conn:
        await conn.exec_driver_sql("CREATE TABLE t (b BLOB)")
        await conn.exec_driver_sql("INSERT INTO t VALUES (?)", (b"small",))
        await conn.exec_driver_sql("INSERT INTO t VALUES (?)", (b"x" * (BIG_BLOB_BYTES + 1),))
    assert threads == [
        ("BEGIN", True), ("CREATE", True), ("INSERT", True), ("INSERT", False), ("COMMIT", False)
    ]  # fmt: skip
    async with inline.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 0


class Heartbeat:
    """A task ticking every 2 ms; the longest gap between ticks tells whether the loop stalled."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.002)
            now = time.monotonic()
            self.longest, last = max(self.longest, now - last), now

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.get_running_loop().create_task(self._beat())
        await asyncio.sleep(0)  # the task starts its clock before the caller goes on
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def hold_write_lock(path: Path) -> Callable[[], None]:
    """Another connection takes the write lock on `path`; the returned function releases it."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")

    def release() -> None:
        other.execute("COMMIT")
        other.close()

    return release


async def test_a_lock_held_elsewhere_is_waited_for_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    db = sqlite_database(tmp_path / "locked.db")
    try:
        async with db.transaction() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        release = hold_write_lock(tmp_path / "locked.db")
        asyncio.get_running_loop().call_later(0.5, release)
        started = time.monotonic()
        # BEGIN IMMEDIATE waits for the other connection.
        async with Heartbeat() as heartbeat, db.transaction() as conn:
            await conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        waited = time.monotonic() - started
        async with db.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT n FROM t ORDER BY n")).scalars().all()
    finally:
        await db.close()
    assert 0.49 <= waited < 5 and rows == [1, 2]
    # The busy handler SQLite would have slept in blocked the loop for the whole 500 ms; a
    # loaded machine may pause the process for a tenth of a second now and then.
    assert heartbeat.longest < 0.25, heartbeat.longest


async def test_a_lock_held_too_long_fails_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "LOCK_TIMEOUT_SECONDS", 0.5)
    db = sqlite_database(tmp_path / "locked.db")
    try:
        async with db.transaction() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        release = hold_write_lock(tmp_path / "locked.db")
        started = time.monotonic()
        try:
            async with Heartbeat() as heartbeat:
                with pytest.raises(OperationalError) as refused:
                    async with db.transaction() as conn:
                        await conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        finally:
            release()
        waited = time.monotonic() - started
        async with db.transaction() as conn:  # the connection is usable again
            await conn.exec_driver_sql("INSERT INTO t VALUES (3)")
            rows = (await conn.exec_driver_sql("SELECT n FROM t ORDER BY n")).scalars().all()
    finally:
        await db.close()
    assert isinstance(refused.value.orig, sqlite3.OperationalError)
    assert reason(refused.value) == "database is locked"
    assert 0.49 <= waited < 3 and heartbeat.longest < 0.25
    assert rows == [1, 3]


async def test_commit_is_durable_and_visible_to_another_connection(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path / "durable.db")
    try:
        async with db.transaction() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
            await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2  # FULL
        other = sqlite3.connect(tmp_path / "durable.db")
        assert other.execute("SELECT n FROM t").fetchall() == [(1,)]
        other.close()
    finally:
        await db.close()


async def test_a_connection_that_bound_a_big_blob_is_replaced_and_closed(inline: Database) -> None:
    first = await driver_connection(inline)
    async with inline.transaction() as conn:
        await conn.exec_driver_sql("CREATE TABLE t (b BLOB)")
        await conn.exec_driver_sql("INSERT INTO t VALUES (?)", (b"x" * (BIG_BLOB_BYTES + 1),))
    async with asyncio.timeout(5):
        second = await driver_connection(inline)
    assert second is not first and first._connection is None


async def test_close_waits_for_a_job_left_in_the_thread_and_never_hangs(tmp_path: Path) -> None:
    driver = await sqlite_inline.connect(
        str(tmp_path / "closing.db"), lock_timeout=1, thread_bytes=BIG_BLOB_BYTES
    )
    order: list[str] = []

    def slow() -> None:
        time.sleep(0.2)
        order.append("job")

    task = asyncio.create_task(driver.call(slow, in_thread=True, retry=False))
    await asyncio.sleep(0.05)
    task.cancel()  # its job goes on in the thread
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5):
        await driver.close()
        order.append("closed")
        await driver.close()  # again: nothing to do
    assert order == ["job", "closed"]
    with pytest.raises(ValueError, match="no active connection"):
        driver.cursor()
    forced = await sqlite_inline.connect(
        str(tmp_path / "closing.db"), lock_timeout=1, thread_bytes=BIG_BLOB_BYTES
    )
    forced.stop()  # SQLAlchemy's forced close: returns at once, a close after it too
    async with asyncio.timeout(1):
        await forced.close()


async def test_writes_cancelled_at_any_moment_leave_an_engine_that_closes(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path / "cancelled.db")
    async with db.transaction() as conn:
        await conn.exec_driver_sql("CREATE TABLE t (b BLOB)")

    async def write() -> None:
        async with db.transaction() as conn:
            await conn.exec_driver_sql("INSERT INTO t VALUES (?)", (b"x" * (BIG_BLOB_BYTES + 1),))
            await conn.exec_driver_sql("INSERT INTO t VALUES (x'00')")

    for delay in (0, 0.0005, 0.001, 0.002, 0.004, 0.008):
        task = asyncio.create_task(write())
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    async with asyncio.timeout(5):
        await write()  # the engine still works
        await db.close()
