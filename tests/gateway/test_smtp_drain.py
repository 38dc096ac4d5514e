"""While a daemon drains, its SMTP listener answers 421 instead of refusing connections.

A session in DATA when the stop comes finishes its message (stored, answered 250); a new
connection is greeted with 421 and closed; an idle session gets 421 to its next command; once
the drain is over the listening socket is closed and the daemon exits 0.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
from typing import Any

import pytest

import pytrs.daemon
from pytrs.schema.tables import inbox

from ..conftest import wait_until
from ..helpers import count, make_mail

SHUTTING_DOWN = "4.3.2 {} Service shutting down, try again later"


def _connect(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.ehlo("client.example")
    return client


def _begin_data(client: smtplib.SMTP, head: bytes) -> None:
    assert client.mail("alice@customer.example")[0] == 250
    assert client.rcpt("support@example.com")[0] == 250
    assert client.docmd("DATA")[0] == 354
    client.send(head)


def _end_data(client: smtplib.SMTP, rest: bytes) -> tuple[int, bytes]:
    client.send(rest + b".\r\n")
    return client.getreply()


def _greeting(port: int) -> tuple[int, str]:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30):
            return 220, ""
    except smtplib.SMTPConnectError as exc:
        return exc.smtp_code, exc.smtp_error.decode()


async def test_new_connections_get_421_while_a_session_in_data_finishes(
    config: Any, start_daemon: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The drain cuts a DATA still running after a few seconds; on a loaded machine the steps
    # below may take that long, and the test is about what happens before.
    monkeypatch.setattr(pytrs.daemon, "SESSION_GRACE_SECONDS", 60.0)
    daemon = await start_daemon(config)
    port = daemon.port()
    hostname = config.smtp.hostname or socket.gethostname()
    raw = make_mail(subject="in DATA at the stop")
    head, rest = raw[: len(raw) // 2], raw[len(raw) // 2 :]
    in_data = await asyncio.to_thread(_connect, port)
    idle = await asyncio.to_thread(_connect, port)
    try:
        await asyncio.to_thread(_begin_data, in_data, head)
        daemon.daemon.request_stop()
        await wait_until(_draining(daemon))
        code, text = await asyncio.to_thread(_greeting, port)
        assert (code, text) == (421, SHUTTING_DOWN.format(hostname))
        assert await asyncio.to_thread(idle.noop) == (421, SHUTTING_DOWN.format(hostname).encode())
        code, reply = await asyncio.to_thread(_end_data, in_data, rest)
        assert code == 250 and reply.startswith(b"2.0.0 Ok: queued as "), reply
    finally:
        await asyncio.to_thread(in_data.close)
        await asyncio.to_thread(idle.close)
    assert await asyncio.wait_for(daemon.task, 30) == 0
    assert await count(db, inbox) == 1
    # The drain is over: now the port is closed.
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


def _draining(daemon: Any) -> Any:
    async def check() -> bool:
        return bool(daemon.daemon._sessions.draining)

    return check
