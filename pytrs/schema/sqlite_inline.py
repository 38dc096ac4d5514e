"""The SQLite driver connection under the engine: statements on the event loop's own thread.

SQLAlchemy's aiosqlite dialect adapts an aiosqlite connection, which runs every statement in a
thread of its own and wakes the event loop once per statement: dozens of thread hops per mail,
each costing far more than the statement (a few microseconds on SQLite). This module offers the
part of aiosqlite's interface the dialect uses, over a plain `sqlite3` connection, and
`schema/database.py` plugs it in through `create_async_engine(async_creator=…)`:

- ordinary statements run at once on the calling thread, the loop's;
- what can take long runs in the connection's own thread: COMMIT (its fsync; SQLite keeps
  `synchronous=FULL`), statements binding big values (a 25 MB mail is copied into SQLite),
  and the close (the last connection to a file checkpoints its write-ahead log);
- a lock held by another connection is waited for with `asyncio.sleep`, never inside SQLite:
  the connection's busy timeout is 0, and a statement refused with SQLITE_BUSY is tried again
  after a short pause until `lock_timeout` has passed, then fails with SQLite's own error;
- closing never waits for more than the job in the thread, and `stop()` does not wait at all;
- `holds_big_values` says that a statement bound big values, which sqlite3's statement cache
  keeps: `schema/database.py` has the pool replace such a connection.

One connection is used by one task at a time (the pool hands it out). A job left running in
the thread by a cancelled caller is waited for by the connection's next call, so the
connection is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# The pause before a refused statement is tried again grows from the first to the longest: a
# writer holds SQLite's lock for a transaction of about a millisecond, so short pauses keep
# the queue moving, and the cap keeps a long wait from drifting far behind the lock's release.
FIRST_PAUSE_SECONDS = 0.0002
LONGEST_PAUSE_SECONDS = 0.004


_BINARY = (bytes, bytearray, memoryview)


def bound_bytes(parameters: Any, executemany: bool) -> int:
    """The size of the biggest row of byte values bound by one statement (`parameters`: one
    row, or the rows of an executemany; a row is a sequence, or a dict of named values)."""
    # The driver binds an executemany a row at a time, so what counts is the biggest row,
    # not the sum of the rows. Loops rather than sum(): this runs for every statement.
    biggest = 0
    for row in parameters if executemany else (parameters,):
        size = 0
        for value in row.values() if isinstance(row, dict) else row:
            if isinstance(value, _BINARY):
                size += len(value)
        biggest = max(biggest, size)
    return biggest


async def connect(
    database: str, *, lock_timeout: float, thread_bytes: int, **kwargs: Any
) -> InlineConnection:
    """Open `database` (the arguments of `sqlite3.connect`) for the dialect.

    `lock_timeout`: how long, in seconds, a statement waits for another connection's lock;
    `thread_bytes`: statements binding more bytes than this in one row run in the thread.
    """
    kwargs.update(timeout=0, check_same_thread=False)
    return InlineConnection(sqlite3.connect(database, **kwargs), lock_timeout, thread_bytes)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    # The extended code (SQLITE_BUSY_RECOVERY, …) carries the primary one in its low byte.
    # An error the sqlite3 module raised by itself, not SQLite, has no code.
    try:
        return error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    except AttributeError:
        return False


class InlineConnection:
    """An aiosqlite-like connection whose statements run on the caller's thread."""

    def __init__(self, connection: sqlite3.Connection, lock_timeout: float, thread_bytes: int):
        # `_connection` (None once closed) and `_conn` carry aiosqlite's names: the dialect
        # reads them.
        self._connection: sqlite3.Connection | None = connection
        self._lock_timeout = lock_timeout
        self._thread_bytes = thread_bytes
        self._thread: ThreadPoolExecutor | None = None
        self._job: Future[Any] | None = None  # the last job given to the thread
        # Whether a statement bound more than `thread_bytes`: sqlite3's statement cache keeps
        # the last values bound to each statement for the connection's life.
        self.holds_big_values = False
        self._tx = _RunAtOnce()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            # aiosqlite's words, which the dialect recognises as a lost connection.
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._conn.cursor())

    async def commit(self) -> None:
        # SQLite keeps the transaction open when COMMIT is refused for a lock: it can be
        # tried again.
        await self.call(self._conn.commit, in_thread=True, retry=True)

    async def rollback(self) -> None:
        # Nothing reaches the disk: the write-ahead log's uncommitted pages are dropped.
        await self.call(self._conn.rollback, in_thread=False, retry=False)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is None:
            return
        await self._settle()
        connection, self._connection = self._connection, None
        try:
            await self._in_thread(connection.close)
        finally:
            self._let_thread_go()

    def stop(self) -> None:
        """Close without waiting (SQLAlchemy's forced close, also from garbage collection):
        the close runs in the thread, after a job still running there."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                self._executor().submit(connection.close)
            except RuntimeError:  # the interpreter is shutting down: no new thread
                connection.close()
        self._let_thread_go()

    async def call(
        self, function: Callable[..., Any], *args: Any, in_thread: bool, retry: bool | None
    ) -> Any:
        """`function(*args)`, on this thread or in the connection's; while another connection
        holds the lock, tried again until `lock_timeout` has passed if `retry` is true, or is
        None and no transaction was open (a statement refused outside a transaction changed
        nothing; inside one, SQLite does not say it may be tried again).

        Raises sqlite3.Error as `function` does, the last "database is locked" at the end.
        """
        if self._job is not None and not self._job.done():
            await self._settle()
        if retry is None:
            retry = not self._conn.in_transaction
        deadline = 0.0
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                if in_thread:
                    return await self._in_thread(function, *args)
                return function(*args)
            except sqlite3.OperationalError as error:
                if not (retry and _is_busy(error)):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self._lock_timeout
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)

    def wants_thread(self, parameters: Any, executemany: bool) -> bool:
        """Whether a statement binding `parameters` runs in the thread: it copies big values."""
        if bound_bytes(parameters, executemany) <= self._thread_bytes:
            return False
        self.holds_big_values = True
        return True

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        self._job = self._executor().submit(function, *args)
        return await asyncio.wrap_future(self._job)

    async def _settle(self) -> None:
        # A caller cancelled while its job ran in the thread left the job running: the next
        # call waits for it, whatever its outcome (which went to the cancelled caller).
        job = self._job
        if job is not None and not job.done():
            await asyncio.wait([asyncio.wrap_future(job)])

    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="pytrs-sqlite")
        return self._thread

    def _let_thread_go(self) -> None:
        # The thread ends once its queued jobs are done; nothing waits for it.
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None


class InlineCursor:
    """An aiosqlite-like cursor over a `sqlite3` cursor of an InlineConnection."""

    def __init__(self, owner: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        in_thread = self._owner.wants_thread(parameters, executemany=False)
        await self._owner.call(self._cursor.execute, sql, parameters, in_thread=in_thread,
                               retry=None)  # fmt: skip
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = parameters if isinstance(parameters, Sequence) else list(parameters)
        in_thread = self._owner.wants_thread(rows, executemany=True)
        # Not tried again: outside a transaction the rows before a refused one are already
        # committed (pytrs runs every executemany inside BEGIN IMMEDIATE, which waited).
        await self._owner.call(self._cursor.executemany, sql, rows, in_thread=in_thread,
                               retry=False)  # fmt: skip
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def setinputsizes(self, *_sizes: Any) -> None:
        """Nothing to do (sqlite3's does nothing either)."""

    async def close(self) -> None:
        self._cursor.close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        while (row := self._cursor.fetchone()) is not None:
            yield row


class _RunAtOnce:
    """What the dialect's isolation-level setter expects in place of aiosqlite's job queue
    (`_tx.put_nowait((future, function))`): the function runs at once, its outcome settles
    the future."""

    def put_nowait(self, job: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = job
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)
