"""Shared fixtures: a fresh database per test on SQLite or PostgreSQL, configurations, a daemon.

Set PYTRS_TEST_DATABASE_URL (e.g. postgresql+asyncpg://postgres@127.0.0.1/test) to run the suite
on PostgreSQL; each test then gets a schema of its own, dropped afterwards, so concurrent runs on
one server cannot collide. Without it every test gets a temporary SQLite file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pytrs.config import Config, parse_config
from pytrs.daemon import Daemon
from pytrs.schema.database import Database, create_database

from . import migrated
from .dovecot import DovecotServer
from .servers.relay import RecordingRelay
from .znuny.fixtures import znuny_database, znuny_mariadb, znuny_postgresql  # noqa: F401

TEST_DATABASE_URL = os.environ.get("PYTRS_TEST_DATABASE_URL", "")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def engine_name() -> str:
    for name in ("postgresql", "mysql"):
        if TEST_DATABASE_URL.startswith(name):
            return name
    return "sqlite"


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """An in-process reload (or `pytrs` command) sets the root logger's level and handler;
    later tests' caplog must not inherit a level another test chose."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)


@pytest.fixture
async def database_settings(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The `[database]` table of a configuration pointing at an empty test database."""
    if not TEST_DATABASE_URL:
        yield {"url": f"sqlite+aiosqlite:///{tmp_path / 'pytrs.db'}"}
        return
    schema = f"pytrs_test_{os.getpid()}_{secrets.token_hex(4)}"
    # MariaDB's schema is a database: `[database] schema` then names the test's database.
    create = migrated.create_schema_sql(schema, TEST_DATABASE_URL)
    drop = migrated.drop_schema_sql(schema, TEST_DATABASE_URL)
    admin = create_async_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(create))
        yield {"url": TEST_DATABASE_URL, "schema": schema}
        async with admin.connect() as conn:
            await conn.execute(text(drop))
    finally:
        await admin.dispose()


def make_config(database: dict[str, Any], **overrides: Any) -> Config:
    """A test configuration: queues Support and Sales, listeners on free ports."""
    data: dict[str, Any] = {
        "database": dict(database),
        "smtp": {"listen": ["127.0.0.1:0"], "lmtp_listen": ["127.0.0.1:0"]},
        "web": {"listen": ""},
        # In-process workers: these tests look at the daemon's own workers; the child
        # processes (the default on two CPUs) are tested by the daemons started as commands.
        "postmaster": {"poll_interval_seconds": 0.2, "retry_backoff_seconds": 0.1, "processes": 0},
        "daemon": {"drain_seconds": 10.0, "log_level": "INFO"},
        "queues": [
            {"name": "Support", "follow_up": "possible"},
            {"name": "Sales", "follow_up": "new_ticket"},
            {"name": "Billing", "follow_up": "reject"},
        ],
        "system_addresses": [
            {"address": "support@example.com", "name": "Example Support", "queue": "Support"},
            {"address": "sales@example.com", "name": "Example Sales", "queue": "Sales"},
            {"address": "billing@example.com", "name": "Example Billing", "queue": "Billing"},
        ],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data, environ={})


@pytest.fixture
def config(database_settings: dict[str, Any]) -> Config:
    return make_config(database_settings)


@pytest.fixture
async def db(config: Config) -> AsyncIterator[Database]:
    """The test database, migrated to head (a copy of a migrated one: tests/migrated.py)."""
    database = create_database(config.database)
    await migrated.upgrade(database)
    try:
        yield database
    finally:
        await database.close()


class RunningDaemon:
    """A daemon running in the test's event loop, with the ports it bound."""

    def __init__(self, daemon: Daemon, task: asyncio.Task[int]) -> None:
        self.daemon = daemon
        self.task = task

    def port(self, kind: str = "smtp") -> int:
        return next(addr[1] for k, addr in self.daemon.bound if k == kind)

    async def stop(self) -> int:
        self.daemon.request_stop()
        return await asyncio.wait_for(self.task, 30)


@pytest.fixture
async def start_daemon(db: Database) -> AsyncIterator[Callable[[Config], Any]]:
    """Start daemons on the migrated test database; all are stopped at teardown."""
    running: list[RunningDaemon] = []

    async def start(config: Config) -> RunningDaemon:
        if not config.source and config.postmaster.processes:
            # A worker child reads the daemon's file (or the built-in defaults without one): a
            # configuration the test built in memory has workers in the daemon's own process.
            postmaster = dataclasses.replace(config.postmaster, processes=0)
            config = dataclasses.replace(config, postmaster=postmaster)
        daemon = Daemon(config)
        task = asyncio.create_task(daemon.run())
        started = asyncio.create_task(daemon.started.wait())
        await asyncio.wait({task, started}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises the start-up error
        assert daemon.started.is_set(), "daemon did not start"
        handle = RunningDaemon(daemon, task)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            await handle.stop()


@pytest.fixture
async def daemon(config: Config, start_daemon: Callable[[Config], Any]) -> RunningDaemon:
    return await start_daemon(config)


async def wait_until(check: Callable[[], Any], within: float = 15.0, interval: float = 0.05) -> Any:
    """Poll an async `check` until it returns something truthy; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > end:
            raise AssertionError(f"condition not met within {within} s (last: {result!r})")
        await asyncio.sleep(interval)


@pytest.fixture
async def relay() -> AsyncIterator[RecordingRelay]:
    """A recording smarthost on 127.0.0.1:0 (see tests/responders/relay.py)."""
    server = await RecordingRelay().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def corpus() -> Iterator[Path]:
    path = SHARED / "corpus" / "znuny"
    if not path.is_dir():
        pytest.skip("../shared/corpus/znuny is not present")
    yield path


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotServer]:
    server = DovecotServer.start(tmp_path_factory.mktemp("dovecot"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> tuple[str, str]:
    """A fresh Dovecot user (name, password) for one test."""
    user, password = f"u{secrets.token_hex(4)}", secrets.token_hex(8)
    dovecot.add_user(user, password)
    return user, password
