"""The database handle every stage shares: engine creation, per-dialect set-up, transactions.

All SQLite, PostgreSQL and MariaDB/MySQL specifics live here so that the rest of pytrs writes
one SQL dialect: SQLite runs in WAL mode with foreign keys on and takes its write lock at BEGIN
(BEGIN IMMEDIATE), so two writers queue instead of dead-locking on a lock upgrade; PostgreSQL may
be confined to a schema through ``search_path`` (used by tests and by shared databases);
MariaDB talks utf8mb4 in strict mode at READ COMMITTED, like PostgreSQL, and its "schema" is a
database: ``[database] schema`` names the database to use in place of the URL's.

What differs between the engines reaches the rest of pytrs only through the small functions at
the end of this module, named after what they do rather than after an engine: the id column
types (``BigId``, ``SmallId``), ``conflict_insert`` (INSERT … ON CONFLICT), ``for_update`` (row
locks, ``SKIP LOCKED``), ``lock_keys`` (transaction-scoped advisory locks) and
``Database.side_transactions``. SQLite needs no row or advisory lock: BEGIN IMMEDIATE already
serialises the writers of every process. MariaDB has no transaction-scoped advisory lock: its
named locks (GET_LOCK) belong to the session, so pytrs releases them as the transaction that
took them commits or rolls back (``_install_mysql_hooks``). ``tests/test_floors.py`` checks
that no other module names an engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    LargeBinary,
    Select,
    SmallInteger,
    Text,
    event,
    text,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateTable

from pytrs.schema import sqlite_inline

if TYPE_CHECKING:
    from pytrs.config import DatabaseConfig

# A CLI command or a daemon start waits this long for the server before saying it is down.
CONNECT_TIMEOUT_SECONDS = 15.0
# SQLite: a statement binding more bytes than this runs in the connection's thread, and gets
# its connection replaced (a cached statement would keep a copy of them).
BIG_BLOB_BYTES = 1024 * 1024
# SQLite: how long a statement waits for the write lock another process holds (a transaction
# of the other daemon process, a CLI command) before it fails with "database is locked".
LOCK_TIMEOUT_SECONDS = 60.0


class StorageError(Exception):
    """The database could not durably store or read something; the caller answers "try later"."""


class DatabaseNotFound(StorageError):
    """The SQLite file named by the configuration does not exist (and was not to be created)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"database not found at {path}")


class DatabaseUnavailable(StorageError):
    """The database cannot be opened: server down, no such database, login refused …"""

    def __init__(self, location: str, reason: str) -> None:
        self.location, self.reason = location, reason
        super().__init__(f"cannot open the database {location}: {reason}")


def utcnow() -> datetime:
    """Naive UTC now, the form every timestamp column stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class Database:
    """One engine plus the transaction helper; cheap to pass around, closed once at shutdown."""

    def __init__(self, engine: AsyncEngine, *, znuny: bool = False, own_schema: str = "") -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Beside an existing Znuny ([database] mode = "znuny"): the shared tables are Znuny's,
        # pytrs's own ones are in `own_schema` (`pytrs db attach`, schema/attach.py).
        self.znuny = znuny
        self.own_schema = own_schema

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def holds_schemas(self) -> bool:
        """Whether tables can live in schemas of their own inside the database (pytrs's own
        tables beside Znuny's, `schema/attach.py`)."""
        return self.is_postgresql

    @property
    def is_mysql(self) -> bool:
        """MariaDB or MySQL (SQLAlchemy names both "mysql")."""
        return self.dialect == "mysql"

    @property
    def side_transactions(self) -> bool:
        """Whether a second transaction can run beside an open one in this process: PostgreSQL's
        and MariaDB's pools have connections to spare; SQLite's single connection would wait
        for itself."""
        return not self.is_sqlite

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside BEGIN … COMMIT; any exception rolls back and propagates."""
        async with self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def create_database(
    config: DatabaseConfig, *, pool: bool = True, create_missing: bool = True
) -> Database:
    """Build the engine for `config`; `pool=False` gives one connection per use (CLI tools).

    With `create_missing=False` a missing SQLite file raises DatabaseNotFound instead of being
    created (with its directories) at the first connection: a mistyped path in a command that
    only reads, or in a daemon pointed at the wrong file, must not leave an empty database.
    """
    url = make_url(config.url)
    kwargs: dict[str, Any] = {"echo": config.echo}
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_path(url.database, create_missing)
        # One connection serialises writers inside the process (an asyncio wait for the pool);
        # other processes' writers are waited for with asyncio.sleep (`sqlite_inline`).
        kwargs.update(pool_size=1, max_overflow=0, pool_timeout=120)
        if not pool:
            kwargs = {"echo": config.echo, "poolclass": NullPool}
        # The prepared-statement cache stays on (without it ingest is ~15 % slower on SQLite),
        # but a cached statement keeps a copy of the last blob bound to it: a connection that
        # bound a big one is replaced at its next checkout (`_install_sqlite_hooks`).
        engine = create_async_engine(url, async_creator=_sqlite_connector(url), **kwargs)
        _install_sqlite_hooks(engine)
    elif url.get_backend_name() == "mysql":
        engine = _create_mysql_engine(config, url, pool=pool)
    else:
        connect_args: dict[str, Any] = {}
        server_settings = {"application_name": "pytrs"}
        search_path = _search_path(config)
        if search_path:
            server_settings["search_path"] = search_path
        connect_args["server_settings"] = server_settings
        if pool:
            kwargs.update(
                pool_size=config.pool_size, max_overflow=config.pool_size, pool_timeout=30
            )
        else:
            kwargs["poolclass"] = NullPool
        engine = create_async_engine(url, connect_args=connect_args, pool_pre_ping=True, **kwargs)
    znuny = config.mode == "znuny"
    return Database(engine, znuny=znuny, own_schema=config.own_schema if znuny else "")


def _search_path(config: DatabaseConfig) -> str:
    """PostgreSQL's search_path: `[database] schema`; beside Znuny, pytrs's own schema first,
    so that its own tables (and its `alembic_version`) are found before Znuny's."""
    if config.mode == "znuny":
        return f"{config.own_schema}, {config.schema or 'public'}"
    return config.schema


# MariaDB sessions: strict (a value too long or out of range is an error, as on PostgreSQL,
# not a silent cut), no zero dates, the named engine or an error, and UPDATE's SET reading the
# row as it was (SIMULTANEOUS_ASSIGNMENT, MariaDB 10.3+; without it `SET raw = :new,
# original_raw = raw` saw the new raw); timestamps are naive UTC everywhere, and the session's
# time zone is UTC so that NOW() agrees with them.
MYSQL_SQL_MODE = (
    "STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,SIMULTANEOUS_ASSIGNMENT"
)
# Below the server's wait_timeout (8 hours by default): a pooled connection idle longer would
# have been closed by the server.
MYSQL_POOL_RECYCLE_SECONDS = 3600


def _create_mysql_engine(config: DatabaseConfig, url: URL, *, pool: bool) -> AsyncEngine:
    """The engine for a MariaDB/MySQL URL: utf8mb4 always (MySQL's "utf8" holds no emoji),
    `[database] schema` as the database, READ COMMITTED like PostgreSQL's default."""
    query = {**url.query, "charset": "utf8mb4"}
    url = url.set(query=query)
    if config.schema:
        url = url.set(database=config.schema)
    kwargs: dict[str, Any] = {"echo": config.echo}
    if pool:
        kwargs.update(pool_size=config.pool_size, max_overflow=config.pool_size, pool_timeout=30)
    else:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(
        url,
        connect_args={
            "init_command": f"SET SESSION sql_mode='{MYSQL_SQL_MODE}', time_zone='+00:00'"
        },
        isolation_level="READ COMMITTED",
        pool_pre_ping=True,
        pool_recycle=MYSQL_POOL_RECYCLE_SECONDS,
        **kwargs,
    )
    _install_mysql_hooks(engine)
    # asyncmy logs each warning of the server (a duplicate skipped by INSERT IGNORE, an
    # index name MariaDB ignores) at WARNING: pytrs's own lines say what matters.
    logging.getLogger("asyncmy").setLevel(logging.ERROR)
    return engine


@compiles(CreateTable, "mysql")
def _create_table_binary_collation(element: CreateTable, compiler: Any, **kw: Any) -> str:
    """CREATE TABLE on MariaDB in utf8mb4 with its binary collation, whatever the database's
    defaults: text compares as on PostgreSQL and SQLite (the usual *_ci collations take "a",
    "A" and "ä" as equal, so unique keys would refuse Message-IDs and logins that differ in
    case or accents), and Alembic's table options stay those of the models."""
    statement = compiler.visit_create_table(element, **kw)
    if "COLLATE" in statement.rsplit(")", 1)[-1].upper():
        return str(statement)
    return f"{statement.rstrip()} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin\n\n"


# MySQL's TEXT and BLOB stop at 64 KiB, where PostgreSQL's and SQLite's have no bound (a body,
# a mail's raw bytes), and its DATETIME drops fractions of a second (the order of two events
# of one second, a lease's end): on MySQL the models' and migrations' unbounded types are the
# LONG ones and timestamps keep microseconds. What other engines get is unchanged.


@compiles(Text, "mysql")
def _long_text(type_: Text, compiler: Any, **kw: Any) -> str:
    return "LONGTEXT" if type_.length is None else str(compiler.visit_TEXT(type_, **kw))


@compiles(LargeBinary, "mysql")
def _long_blob(type_: LargeBinary, compiler: Any, **kw: Any) -> str:
    return "LONGBLOB" if type_.length is None else str(compiler.visit_BLOB(type_, **kw))


@compiles(DateTime, "mysql")
def _datetime_microseconds(type_: DateTime, compiler: Any, **kw: Any) -> str:
    return "DATETIME(6)"


# A connection's `info` key: named locks (GET_LOCK) its transaction took.
_HELD_LOCKS = "pytrs_named_locks"


def _install_mysql_hooks(engine: AsyncEngine) -> None:
    """Release the named locks of `lock_keys` / `lock_schema` as their transaction ends.

    GET_LOCK locks outlive transactions (they belong to the session), and a pooled connection
    would keep them for its next user. SQLAlchemy's commit and rollback events come for every
    end of a transaction (a rolled-back connection given back to the pool included); one that
    dies with its connection has its locks released by the server.
    """

    def release(conn: Any) -> None:
        if conn.info.pop(_HELD_LOCKS, False):
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.execute("DO RELEASE_ALL_LOCKS()")
            finally:
                cursor.close()

    event.listen(engine.sync_engine, "commit", release)
    event.listen(engine.sync_engine, "rollback", release)


def _sqlite_connector(url: URL) -> Callable[[], Awaitable[sqlite_inline.InlineConnection]]:
    """The dialect's connections, run on the event loop's thread (`schema/sqlite_inline.py`):
    aiosqlite's thread hop per statement cost more than the statements."""
    args, kwargs = url.get_dialect()().create_connect_args(url)

    def connect() -> Awaitable[sqlite_inline.InlineConnection]:
        return sqlite_inline.connect(
            *args, lock_timeout=LOCK_TIMEOUT_SECONDS, thread_bytes=BIG_BLOB_BYTES, **kwargs
        )

    return connect


def database_file(url: str) -> Path | None:
    """The file a database URL names (SQLite), absolute; None for a database server."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).absolute()


def _prepare_sqlite_path(database: str | None, create_missing: bool) -> None:
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.is_dir():
        # SQLite fails to open it, and aiosqlite (0.22) then reports the failure to an event
        # loop already closed: a thread traceback under the one line. Said here instead.
        raise DatabaseUnavailable(str(path.absolute()), "a directory, not an SQLite file")
    if create_missing:
        _create_owner_only(path)
    elif not path.exists():
        raise DatabaseNotFound(str(path.absolute()))


def _create_owner_only(path: Path) -> None:
    """Create the SQLite file (mode 0600) and each missing directory above it (0700).

    The database holds every mail and the agents' password hashes: left to the umask (0022
    almost everywhere) SQLite made it world-readable. SQLite gives its -wal and -shm files the
    mode of the database file, so they follow. Modes are set after creation as well, because
    the umask would otherwise still take bits away from what is asked. An existing file or
    directory is left as it is (`pytrs doctor` reports loose modes).
    """
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(handle, 0o600)
    finally:
        os.close(handle)


def location(db: Database) -> str:
    """Where `db` lives, for messages: the SQLite file, or the URL without its password."""
    url = db.engine.url
    if db.is_sqlite:
        return str(Path(url.database or ":memory:").absolute())
    return url.render_as_string(hide_password=True)


async def probe(db: Database, seconds: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Connect once, so that an unusable database is reported before any work starts.

    Raises DatabaseUnavailable with the driver's reason (no such database, connection refused,
    login failed, not a database file …).
    """
    try:
        async with asyncio.timeout(seconds), db.connect() as conn:
            await conn.execute(text("SELECT 1"))
            if db.is_postgresql:
                await _require_schema(db, conn)
    except TimeoutError:
        raise DatabaseUnavailable(location(db), f"no answer within {seconds:.0f} s") from None
    except (OSError, DBAPIError) as exc:
        why = reason(exc)
        original = getattr(exc, "orig", None)
        name = db.engine.url.database
        # `db upgrade` makes tables, not the database: say what does.
        if getattr(original, "sqlstate", None) == _NO_SUCH_DATABASE:
            why += f": create it (createdb {name}), then run pytrs db upgrade"
        elif _mysql_error_code(original) == _MYSQL_NO_SUCH_DATABASE:
            why += f": create it (CREATE DATABASE `{name}`), then run pytrs db upgrade"
        raise DatabaseUnavailable(location(db), why) from exc


_NO_SUCH_DATABASE = "3D000"  # PostgreSQL's invalid_catalog_name
_MYSQL_NO_SUCH_DATABASE = 1049  # ER_BAD_DB_ERROR


def _mysql_error_code(original: object) -> int | None:
    # asyncmy's errors carry (code, message) as their arguments.
    args: tuple[Any, ...] = tuple(getattr(original, "args", ()))
    return args[0] if len(args) == 2 and isinstance(args[0], int) else None


async def _require_schema(db: Database, conn: AsyncConnection) -> None:
    # A [database] schema that does not exist leaves PostgreSQL with no schema to work in:
    # reads then looked like a database never upgraded, and `db upgrade` failed on its
    # first CREATE TABLE with an internal error.
    if (await conn.execute(text("SELECT current_schema()"))).scalar() is None:
        path = (await conn.execute(text("SHOW search_path"))).scalar()
        raise DatabaseUnavailable(
            location(db),
            f"no schema of search_path {path!r} exists: create it (CREATE SCHEMA) "
            "or fix [database] schema",
        )


def reason(exc: BaseException) -> str:
    """The driver's own words for a database error, on one line, without the SQL and
    parameters SQLAlchemy appends (a log line about a message must not carry its bytes)."""
    # asyncpg's text comes wrapped as "<class '…'>: message"; asyncmy's as "(code, 'message')".
    original = getattr(exc, "orig", None) or exc
    if _mysql_error_code(original) is not None:
        return str(original.args[1]).strip().splitlines()[0]
    lines = str(original).strip().splitlines() or [type(original).__name__]
    return lines[0].split(">: ", 1)[-1] if lines[0].startswith("<class ") else lines[0]


# SQLite's planner picks the right ticket index only with statistics (sqlite_stat1): without
# them the queue view at 100,000 tickets takes 100-200 ms instead of about 20. PostgreSQL's
# autovacuum keeps its statistics; SQLite keeps none by itself, and `PRAGMA optimize` before
# 3.46 looks only at tables the connection has queried. So the daemon analyses once as it
# starts, before it listens: 0.4 s at 100,000 tickets. A sampled ANALYZE (`analysis_limit`)
# would be cheaper, but its statistics led the planner back to the slow plan.


async def refresh_planner_statistics(db: Database) -> None:
    """Refresh SQLite's planner statistics; nothing on PostgreSQL and MariaDB (InnoDB keeps
    persistent statistics itself)."""
    if not db.is_sqlite:
        return
    async with db.transaction() as conn:
        await conn.exec_driver_sql("ANALYZE")


async def follow_inserted_ids(conn: AsyncConnection, tables: Sequence[str]) -> None:
    """After rows were inserted with explicit ids (an import keeping the source's ids): the
    next id each table hands out comes after its highest. PostgreSQL's serial sequences do not
    move for explicit ids; SQLite (and MySQL's AUTO_INCREMENT) follow the highest id anyway."""
    if not _is_postgresql(conn):
        return
    for table in tables:
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        )


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    _set_up_sqlite_connections(engine)

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        # Each cached statement that bound a 25 MB mail keeps its copy (one per INSERT, one per
        # multi-row variant of it) for the connection's life: over a few big mails they add
        # up to a hundred megabytes and more. A fresh connection costs about a millisecond;
        # the pool opens one in place of this one.
        if dbapi_conn.driver_connection.holds_big_values:
            raise DisconnectionError("replaced: its statement cache holds big blobs")


def _set_up_sqlite_connections(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions defer the write lock).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # A "250" promises durability even across a power loss, so every commit reaches
        # the disk; group commits keep the cost of that per batch rather than per message.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- what differs between the engines, for the rest of pytrs ------------------------------------

# Znuny's ids are 32-bit except where a table grows without bound; SQLite needs INTEGER for
# its rowid alias, so big ids use a variant that is BIGINT on PostgreSQL and MariaDB only.
BigId = BigInteger().with_variant(Integer(), "sqlite")
SmallId = SmallInteger().with_variant(Integer(), "sqlite")


_Query = TypeVar("_Query", bound=Select[Any])


def _is_postgresql(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def _is_mysql(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "mysql"


class _MySQLConflictInsert(mysql.Insert):
    """MariaDB's INSERT with PostgreSQL's and SQLite's ON CONFLICT calls, so that callers write
    one form. `index_elements` is not needed: ON DUPLICATE KEY reacts to any unique key, and
    every table pytrs upserts into has one unique key the caller names.

    - `on_conflict_do_update(set_=…)` is ON DUPLICATE KEY UPDATE: a column named in `set_`
      reads the row's current value (`counter + 1`), `excluded.x` the value proposed.
    - `on_conflict_do_nothing()` is INSERT IGNORE: a duplicate is skipped with a rowcount of 0,
      as on the others (a no-op ON DUPLICATE KEY UPDATE would count the row found). IGNORE also
      turns other errors of the row into warnings; pytrs makes values storable before it
      inserts them, and the tables it inserts into this way have no foreign key to miss.
    """

    inherit_cache = True

    @property
    def excluded(self) -> Any:
        return self.inserted

    def on_conflict_do_update(
        self, index_elements: Any = None, set_: Any = None, **_ignored: Any
    ) -> Any:
        return self.on_duplicate_key_update(set_)

    def on_conflict_do_nothing(self, index_elements: Any = None, **_ignored: Any) -> Any:
        return self.prefix_with("IGNORE")


def conflict_insert(conn: AsyncConnection, table: Any) -> Any:
    """INSERT that supports ON CONFLICT (DO NOTHING / DO UPDATE) on the connection's engine."""
    if _is_mysql(conn):
        return _MySQLConflictInsert(table)
    module = postgresql if _is_postgresql(conn) else sqlite
    return module.insert(table)


def for_update(
    conn: AsyncConnection, query: _Query, *, skip_locked: bool = False, of: Any = None,
    key_share: bool = False,
) -> _Query:  # fmt: skip
    """`query` locking the rows it reads until the transaction ends (FOR UPDATE; `skip_locked`:
    rows another transaction holds are passed over; `of`: lock only that table's rows;
    `key_share`: FOR NO KEY UPDATE, for rows that change but never their key, so that rows
    referring to them are not held up), on PostgreSQL. On SQLite `query` as it is: BEGIN
    IMMEDIATE already holds the whole database. MariaDB locks FOR UPDATE (SKIP LOCKED since
    10.6) every row the query reads, of every table: it has neither OF nor NO KEY UPDATE."""
    if _is_mysql(conn):
        return query.with_for_update(skip_locked=skip_locked)
    if not _is_postgresql(conn):
        return query
    return query.with_for_update(skip_locked=skip_locked, of=of, key_share=key_share)


# How long a MariaDB named lock is waited for (PostgreSQL's advisory locks wait without end).
_NAMED_LOCK_WAIT_SECONDS = 3600


# The name of MariaDB's lock on (space, key) in this database: at most 64 characters, and
# databases sharing a server do not wait for each other.
_LOCK_NAME = "CONCAT('pytrs', :space, ':', COALESCE(:key, ''), ':', MD5(COALESCE(DATABASE(), '')))"


async def _take_named_lock(conn: AsyncConnection, space: int, key: int | None) -> None:
    # Marked before it is taken: a lock granted to a statement that then fails is released too.
    conn.sync_connection.info[_HELD_LOCKS] = True  # type: ignore[union-attr]
    got = await conn.scalar(
        text(f"SELECT GET_LOCK({_LOCK_NAME}, :wait)"),
        {"space": space, "key": key, "wait": _NAMED_LOCK_WAIT_SECONDS},
    )
    if got != 1:
        raise StorageError(f"lock ({space}, {key}) not granted within {_NAMED_LOCK_WAIT_SECONDS} s")


async def lock_keys(conn: AsyncConnection, space: int, keys: Sequence[int]) -> None:
    """Take a transaction-scoped advisory lock on (`space`, key) for each of `keys` (32-bit
    signed), in that order, waiting for other transactions that hold one (PostgreSQL); locks
    on something no row stands for yet. A no-op on SQLite, whose writers are serialised."""
    if keys and _is_mysql(conn):
        for key in keys:
            await _take_named_lock(conn, space, key)
        return
    if not keys or not _is_postgresql(conn):
        return
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:space, k) FROM unnest(CAST(:keys AS int[])) AS k"),
        {"space": space, "keys": list(keys)},
    )


async def lock_schema(conn: AsyncConnection, space: int) -> None:
    """Take a transaction-scoped advisory lock on (`space`, the connection's schema), waiting
    for the transaction that holds it (PostgreSQL). Keyed by schema, so that databases sharing
    a server through `[database] schema` do not wait for each other. A no-op on SQLite, whose
    BEGIN IMMEDIATE already serialises writers. On MariaDB, keyed by database; the lock is
    held across the implicit commits its DDL makes, until the transaction's own end."""
    if _is_mysql(conn):
        await _take_named_lock(conn, space, None)
        return
    if not _is_postgresql(conn):
        return
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:space, hashtext(current_schema()))"),
        {"space": space},
    )


@contextlib.asynccontextmanager
async def session_lock(db: Database, space: int, key: int) -> AsyncIterator[bool]:
    """Try to take a session-level advisory lock on (`space`, `key`) for the block, on a
    connection of its own (PostgreSQL): yields whether it was taken. Transactions inside the
    block come and go; a process killed in it loses the connection and so the lock. Always
    taken on SQLite, whose writers are serialised anyway (and whose pool has one connection
    to give). On MariaDB a named lock (GET_LOCK), which is the session's too."""
    if db.is_mysql:
        async with _mysql_session_lock(db, space, key) as got:
            yield got
        return
    if not db.is_postgresql:
        yield True
        return
    async with db.connect() as conn:
        got = bool(
            await conn.scalar(
                text("SELECT pg_try_advisory_lock(:space, :key)"), {"space": space, "key": key}
            )
        )
        await conn.commit()  # the lock outlives the transaction; none stays open
        try:
            yield got
        finally:
            if got:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:space, :key)"), {"space": space, "key": key}
                )
                await conn.commit()


@contextlib.asynccontextmanager
async def _mysql_session_lock(db: Database, space: int, key: int) -> AsyncIterator[bool]:
    params = {"space": space, "key": key}
    async with db.connect() as conn:
        got = await conn.scalar(text(f"SELECT GET_LOCK({_LOCK_NAME}, 0)"), params) == 1
        await conn.commit()  # not marked as the transaction's: it outlives it
        try:
            yield got
        finally:
            if got:
                await conn.execute(text(f"DO RELEASE_LOCK({_LOCK_NAME})"), params)
                await conn.commit()
