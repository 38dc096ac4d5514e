"""The per-account backoff against a real Dovecot: after failures (a wrong password, then a
server that refuses connections) the account task waits longer and longer between attempts, and
after a success it starts over from the shortest wait.

A small TCP relay in front of Dovecot notes when each connection attempt arrives (that is what
the backoff spaces out) and can refuse connections; everything it lets through is Dovecot's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from typing import Any

import pytest

from pytrs.gateway import fetchers as fetchers_module
from pytrs.gateway.fetchers import MailboxFetchers
from pytrs.schema import mailbox_repo

from .conftest import make_config, wait_until
from .dovecot import DovecotServer
from .helpers import inbox_ids, put

FIRST = 0.25  # the first backoff wait in this test (2 s in production)


class Relay:
    """Forwards 127.0.0.1:<port> to Dovecot's IMAP port, noting when each connection arrives
    and when the client let go of it; while `refusing`, it closes new connections at once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.arrivals: list[float] = []
        self.closings: list[float] = []
        self.refusing = False
        self.idling = asyncio.Event()  # a client has sent IDLE
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.arrivals)
        self.arrivals.append(time.monotonic())
        self.closings.append(0.0)
        if self.refusing:
            self.closings[index] = time.monotonic()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        back = asyncio.ensure_future(self._pipe(up_reader, writer))

        await self._pipe(reader, up_writer, self.idling)  # until the client closes or is cut off
        self.closings[index] = time.monotonic()
        await back

    @staticmethod
    async def _pipe(
        src: asyncio.StreamReader, dst: asyncio.StreamWriter, idling: asyncio.Event | None = None
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                if idling is not None and data.rstrip().upper().endswith(b" IDLE"):
                    idling.set()
                dst.write(data)
                await dst.drain()
        dst.close()

    def drop_all(self) -> None:
        """Break every open connection (a server going away)."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def waits(relay: Relay, first: int, last: int) -> list[float]:
    """How long the client waited between letting go of a connection and opening the next,
    for the connections first..last (the backoff, without the time a failure itself took)."""
    return [relay.arrivals[n + 1] - relay.closings[n] for n in range(first, last)]


async def test_backoff_grows_after_failures_and_resets_after_a_success(
    dovecot: DovecotServer, mailbox: tuple[str, str], db: Any, database_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(fetchers_module, "BACKOFF_FIRST_SECONDS", FIRST)
    monkeypatch.setattr(fetchers_module, "BACKOFF_MAX_SECONDS", 60.0)
    relay = await Relay(dovecot.imap_port).start()
    user = mailbox[0]
    settings = {
        "type": "imap", "host": "127.0.0.1", "port": relay.port, "user": user,
        "password": "not-yet-right", "mode": "delete", "name": "backoff",
        "poll_interval_seconds": 60.0, "timeout_seconds": 10.0,
    }  # fmt: skip
    fetchers = MailboxFetchers(make_config(database_settings, mail_accounts=[settings]), db)
    task = asyncio.create_task(fetchers.run())
    try:
        # 1. A wrong password: waits of FIRST, 2×, 4×, 8× between the attempts.
        await wait_until(lambda: _true(len(relay.arrivals) >= 5), within=20)
        waited = waits(relay, 0, 4)
        assert FIRST * 0.9 <= waited[0] < FIRST * 2, waited
        assert all(b > a * 1.6 for a, b in itertools.pairwise(waited)), waited
        [state] = await mailbox_repo.states(db)
        assert "LOGIN failed" in state["last_error"] and state["consecutive_failures"] >= 4
        assert state["next_attempt_at"] is not None

        # 2. The server now takes that password: the next attempt succeeds, mail comes in,
        # the stale error is cleared and the failure count starts over.
        ids = put(dovecot, mailbox, 1)
        dovecot.add_user(user, "not-yet-right")

        async def recovered() -> bool:
            [state] = await mailbox_repo.states(db)
            fetched = (await inbox_ids(db)) == Counter(ids)
            return fetched and state["last_error"] is None and state["consecutive_failures"] == 0

        await wait_until(recovered, within=30)  # the wait in progress may be up to 8 × FIRST
        [state] = await mailbox_repo.states(db)
        assert state["next_attempt_at"] is None and state["last_success_at"] is not None

        # 3. The server goes away and refuses connections: the waits start from FIRST again
        # (without the reset the next one would be 16 × FIRST or more).
        relay.idling.clear()
        await asyncio.wait_for(relay.idling.wait(), 40)  # waiting for mail in IDLE
        relay.refusing = True
        before = len(relay.arrivals)
        broken = time.monotonic()
        relay.drop_all()
        await wait_until(lambda: _true(len(relay.arrivals) >= before + 3), within=20)
        # The broken session is failure 1, then FIRST; the refused attempts 2 and 4 × FIRST.
        assert relay.arrivals[before] - broken < FIRST * 4, (broken, relay.arrivals[before:])
        waited = waits(relay, before, before + 2)
        assert FIRST * 1.5 < waited[0] < FIRST * 4, waited
        assert waited[1] > waited[0] * 1.6, waited
        [state] = await mailbox_repo.states(db)
        assert state["last_error"] and state["consecutive_failures"] >= 2
    finally:
        fetchers.request_stop()
        await asyncio.wait_for(task, 30)
        await relay.stop()


async def _true(value: bool) -> bool:
    return value
