"""A recording smarthost for the outbox tests: aiosmtpd on 127.0.0.1:0 in the test's loop.

It accepts every transaction and records it (envelope and exact bytes), unless the test has
queued a fault: a reply for the next MAIL or DATA ("451 …", "550 …"), "disconnect" (drop the
connection after the data arrived, before answering — the relay may or may not have kept the
mail, from the client's point of view), or "hold" (keep the command waiting until
``released`` is set). RCPT
replies are set per address; ``data_seconds`` makes every DATA reply that late (a slow relay).
STARTTLS, implicit TLS and AUTH are available for the connection tests.
"""

from __future__ import annotations

import asyncio
import email
import ssl
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from .certs import make_pair


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message_id(self) -> str:
        return str(email.message_from_bytes(self.data)["Message-ID"])


class RecordingRelay:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.mail_faults: deque[str] = deque()
        self.data_faults: deque[str] = deque()
        # address → reply for every RCPT of it (a str), or for the next ones (a deque).
        self.rcpt_replies: dict[str, str | deque[str]] = {}
        self.connections = 0
        self.data_seconds = 0.0  # how long each DATA takes to be answered
        self.held = asyncio.Event()  # a "hold" fault is holding a transaction
        self.released = asyncio.Event()
        self.logins: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self._sessions: list[SMTP] = []

    async def start(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        port: int = 0,
    ) -> RecordingRelay:
        def factory() -> SMTP:
            self.connections += 1
            session = SMTP(
                self, hostname="relay.test", decode_data=False, enable_SMTPUTF8=True,
                tls_context=starttls, require_starttls=starttls is not None,
                auth_required=auth is not None, auth_require_tls=starttls is not None,
                authenticator=self._authenticator(auth) if auth else None,
            )  # fmt: skip
            self._sessions.append(session)
            return session

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, "127.0.0.1", port, ssl=implicit_tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.close()
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.abort()
            await self._server.wait_closed()

    async def all_closed(self) -> bool:
        """Whether every connection is closed: a dead client's are once the relay has read
        what it sent (aiosmtpd drops a transaction cut off by the close)."""
        return all(session.transport is None for session in self._sessions)

    def message_ids(self) -> list[str]:
        return [r.message_id for r in self.received]

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """Until `count` transactions were accepted; fails after `within` seconds."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received

    # --- aiosmtpd handler hooks ---

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        fault = self.mail_faults.popleft() if self.mail_faults else ""
        if fault == "hold":
            self.held.set()
            await self.released.wait()
            return "421 4.3.0 released"  # the client is gone by then
        if fault:
            return fault
        envelope.mail_from = address
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if isinstance(reply, deque):
            reply = reply.popleft() if reply else None
        if reply and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self.data_faults.popleft() if self.data_faults else ""
        await asyncio.sleep(self.data_seconds)
        if fault == "hold":
            self.held.set()
            await self.released.wait()
            fault = self.data_faults.popleft() if self.data_faults else ""
        if fault == "disconnect":
            assert server.transport is not None
            server.transport.abort()
            return "421 4.4.2 gone"  # never reaches the client
        if fault:
            return fault
        async with self._arrived:
            self.received.append(
                Received(
                    envelope.mail_from or "",
                    tuple(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                )
            )
            self._arrived.notify_all()
        return "250 2.0.0 queued"

    async def handle_exception(self, error: Exception) -> str:
        return "451 4.3.0 relay test error"

    @staticmethod
    def _authenticator(expected: tuple[str, str]) -> Any:
        def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any):
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == expected
            )
            return AuthResult(success=ok, handled=False)

        return check


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the certificate's path (the client's CA file)."""
    pair = make_pair(directory, "relay")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pair.cert, pair.key)
    return context, pair.cert


def write_rsa_key(path: Path, bits: int = 2048, pkcs8: bool = False) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    )
    return path


def write_ed25519_key(path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path
