"""PostgreSQL going away under a running daemon: 451 while it is gone, 250 once it is back.

The daemon reaches PostgreSQL through a TCP relay that the test cuts and restores, so the outage
is a real network failure (connections reset, new ones refused), not a simulated exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from .conftest import TEST_DATABASE_URL, make_config, wait_until
from .helpers import all_processed, make_mail, send, tickets

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="network outage of a database server; SQLite is a local file "
    "(its storage failures are covered by test_storage_failure_answers_451_then_recovers)",
)


class TcpRelay:
    """Forwards 127.0.0.1:<port> to the database server until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()
        self.server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self.writers.discard(writer)


async def test_database_outage_answers_451_then_accepts(
    database_settings: dict[str, Any], db: Any, start_daemon: Any
) -> None:
    url = make_url(TEST_DATABASE_URL)
    relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    try:
        await _outage_and_recovery(relay, url, database_settings, db, start_daemon)
    finally:
        if relay.server is not None:  # live connections close with the daemon's pool
            relay.server.close()
            await relay.server.wait_closed()


async def _outage_and_recovery(
    relay: TcpRelay, url: Any, database_settings: dict[str, Any], db: Any, start_daemon: Any
) -> None:
    relayed = url.set(host="127.0.0.1", port=relay.port)
    settings = {**database_settings, "url": relayed.render_as_string(hide_password=False)}
    daemon = await start_daemon(make_config(settings))

    await send(daemon.port(), make_mail(subject="before"))
    await relay.cut()
    with pytest.raises(smtplib.SMTPDataError) as caught:
        await send(daemon.port(), make_mail(subject="during"))
    assert caught.value.smtp_code == 451 and caught.value.smtp_error.startswith(b"4.3.0")

    await relay.start()  # the database is back
    await send(daemon.port(), make_mail(subject="during"))  # the MTA retries
    await send(daemon.port(), make_mail(subject="after"))

    async def three_tickets() -> bool:
        return await all_processed(db) and len(await tickets(db)) == 3

    await wait_until(three_tickets, within=30)
    assert sorted(t["title"] for t in await tickets(db)) == ["after", "before", "during"]
