"""SMTP and LMTP ingress: aiosmtpd servers running inside the daemon's event loop.

The handler does almost nothing per message: it checks recipients against the system
addresses (550 for anything else — pytrs is never a relay; 553 for an address the inbox could
not store) and hands the bytes to the InboxWriter; "250" is sent only after the inbox commit
and names the inbox rows ("queued as 12", as MTAs do), so a mail can be followed from the
MTA's log into `pytrs inbox show`. Parsing and routing happen later, in the postmaster worker.
Status lines live in one place below.

Each TCP session reads the listeners' security settings (`gateway/tls.py`) when it starts:
STARTTLS when a certificate is configured, `530` to MAIL before it under `require_tls`, AUTH
(`gateway/smtp_auth.py`) only after it. A unix-socket listener offers neither: its peers are
on this machine, and the socket's permissions decide who may connect. While the daemon drains
(`SessionBook.begin_drain`), a new connection is greeted with `421` and closed, and a session
not in DATA gets `421` to its next command; a session in DATA finishes its message first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException, syntax

from pytrs.gateway.addresses import AddressBook, recipient_problem
from pytrs.gateway.inbox_writer import InboxWriter
from pytrs.gateway.smtp_auth import MECHANISMS, AuthMechanisms
from pytrs.gateway.smtp_data import BufferedData
from pytrs.gateway.smtp_paths import plain_path
from pytrs.gateway.tls import ListenerSecurity, ListenerTls
from pytrs.metrics.registry import MAIL_ACCEPTED, MAIL_REFUSED
from pytrs.runtime.big_messages import BigMessageSlots
from pytrs.schema.database import StorageError
from pytrs.vocabulary.inbox import InboxItem

log = logging.getLogger(__name__)

OK_RCPT = "250 2.1.5 Recipient OK"
OK_DATA = "250 2.0.0 Ok: queued as {}"
REJECT_RCPT = "550 5.1.1 <{}>: Recipient address rejected: not a local address"
# The address is not echoed: it may be huge or hold bytes a log or client would choke on.
UNSTORABLE_RCPT = "553 5.1.3 Recipient address rejected: {}"
TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
TEMP_FAILURE = "451 4.3.0 Temporary failure, please try again later"
BAD_INPUT = "554 5.6.0 Message content rejected"
MUST_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first"
SHUTTING_DOWN = "421 4.3.2 {} Service shutting down, try again later"
QUEUED_AS_MAX = 10


class IngressHandler:
    """aiosmtpd handler shared by the SMTP and LMTP listeners of one daemon."""

    def __init__(
        self,
        addresses: AddressBook,
        writer: InboxWriter,
        *,
        source: str,
        trusted: bool = False,
        max_recipients: int = 100,
        per_recipient_status: bool = False,
        listener: str = "",
    ) -> None:
        """`listener` (the configured listen address) labels this handler's metrics."""
        self.addresses = addresses
        self.writer = writer
        self.source = source
        self.trusted = trusted
        self.max_recipients = max_recipients
        self.per_recipient_status = per_recipient_status
        # Set by a reload (`Daemon._reload_listeners`): the size limit of sessions opened from
        # then on; None keeps the one the listener was started with.
        self.max_message_size: int | None = None
        self.accepted = MAIL_ACCEPTED.labels(source, listener)
        self.refused = {
            why: MAIL_REFUSED.labels(source, listener, why)
            for why in ("unknown-recipient", "unstorable-recipient", "too-many-recipients",
                        "empty-message", "storage-error")
        }  # fmt: skip

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        problem = recipient_problem(address)
        if problem:
            log.info("rejected RCPT (%s) from %s", problem, session.peer)
            self.refused["unstorable-recipient"].inc()
            return UNSTORABLE_RCPT.format(problem)
        if not self.addresses.accepts(address):
            log.info("rejected RCPT %s from %s", address, session.peer)
            self.refused["unknown-recipient"].inc()
            return REJECT_RCPT.format(address)
        if len(envelope.rcpt_tos) >= self.max_recipients:
            self.refused["too-many-recipients"].inc()
            return TOO_MANY_RCPT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return OK_RCPT

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if not raw or raw.isspace():  # strip() would copy a 25 MB mail to find out
            self.refused["empty-message"].inc()
            return BAD_INPUT
        peer = _peer_text(session.peer)
        # An authenticated client is trusted with control headers for the mail it sends,
        # whatever the listener; its name goes with the peer into the inbox row.
        trusted = self.trusted or bool(session.authenticated)
        if session.authenticated and isinstance(session.auth_data, str):
            peer = f"{peer} auth={session.auth_data}"
        items = [
            InboxItem(
                source=self.source,
                raw=raw,
                recipient=rcpt.lower(),
                envelope_from=envelope.mail_from or "",
                peer=peer,
                trusted=trusted,
            )
            for rcpt in envelope.rcpt_tos
        ]
        try:
            ids = await self.writer.store(items)
        except StorageError:
            self.refused["storage-error"].inc(len(items))
            return self._per_recipient([TEMP_FAILURE] * len(items))
        self.accepted.inc(len(ids))
        if self.per_recipient_status:
            return self._per_recipient([OK_DATA.format(i) for i in ids])
        return OK_DATA.format(queued_as(ids))

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        # aiosmtpd lists AUTH after STARTTLS even with no mechanism left; without a users file
        # there is none to offer. (This hook takes over setting the HELO name.)
        session.host_name = hostname
        if getattr(server, "smtp_users", None) is None:
            return [line for line in responses if not line.startswith("250-AUTH")]
        return responses

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # A client's failed handshake (old TLS, a scanner) is not our error; aiosmtpd
            # closes the connection without sending the answer.
            log.info("STARTTLS handshake failed: %s", error.__cause__ or error)
            return "421 4.7.0 TLS handshake failed"
        # The default answer would leak the exception's name to the client.
        log.exception("SMTP session error", exc_info=error)
        return "421 4.3.0 Internal error, closing connection"

    def _per_recipient(self, statuses: Sequence[str]) -> str:
        # LMTP answers DATA once per accepted recipient (RFC 2033), each naming its own row;
        # one transaction stores all of them, so they share the outcome.
        if not self.per_recipient_status:
            return statuses[0]
        return "\r\n".join(statuses)


def queued_as(ids: Sequence[int]) -> str:
    """The inbox ids an SMTP "250" names: all of them up to ten, else the first and the count.

    RFC 5321 keeps a reply line under 512 octets; a hundred recipients would not fit.
    """
    if len(ids) <= QUEUED_AS_MAX:
        return ",".join(str(i) for i in ids)
    return f"{ids[0]} and {len(ids) - 1} more"


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


class SessionBook:
    """The sessions of a daemon's listeners, for its shutdown: which are in DATA, and whether
    they (and new connections) are turned away with 421."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakSet[_Session] = weakref.WeakSet()
        self.draining = False

    def add(self, session: _Session) -> None:
        self._sessions.add(session)

    def __iter__(self) -> Iterator[_Session]:
        return iter(list(self._sessions))

    def begin_drain(self) -> None:
        """From now on, new connections and the next command of idle sessions get 421."""
        self.draining = True

    def in_data(self) -> bool:
        return any(session.in_data for session in self)

    def cut_data(self) -> None:
        """Close the sessions still in DATA: the drain cannot wait for them."""
        for session in self:
            if session.in_data:
                session.close_transport()

    def close(self) -> None:
        """Close every session; those not in DATA are told 421 first."""
        for session in self:
            session.close_transport(farewell=not session.in_data)


class _Session(AuthMechanisms, SMTP):
    """Everything pytrs adds to an aiosmtpd session but the DATA buffer: the shutdown's view
    (in DATA or not, 421 while draining), require_tls, AUTH (from `AuthMechanisms`)."""

    # RFC 5321 caps lines at 1,000 octets, but real mail breaks it (unwrapped base64, long
    # HTML lines) and the big MTAs accept it; refusing would bounce a customer's mail. Memory
    # stays bounded by the message size limit.
    line_length_limit = 1024 * 1024
    in_data = False
    require_tls = False
    book: SessionBook | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # aiosmtpd dispatches through this table and offers no hook before a command runs.
        self._smtp_methods = {
            name: self._unless_draining(name, method) for name, method in self._smtp_methods.items()
        }

    def _unless_draining(
        self, name: str, method: Callable[[str], Awaitable[None]]
    ) -> Callable[[str], Awaitable[None]]:
        @functools.wraps(method)  # keeps the HELP texts (`@syntax`) on the wrapper
        async def command(arg: str) -> None:
            if self.book is not None and self.book.draining and name != "QUIT":
                await self.push(SHUTTING_DOWN.format(self.hostname))
                self.close_transport()
                return
            await method(arg)

        return command

    async def _handle_client(self) -> None:
        if self.book is not None and self.book.draining:
            await self.push(SHUTTING_DOWN.format(self.hostname))
            self.close_transport()
            return
        await super()._handle_client()

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str) -> None:
        # aiosmtpd's own require_starttls refuses LHLO as well (it knows only EHLO), which
        # would make LMTP unusable; refusing MAIL keeps every message off a plain connection.
        if self.require_tls and self._tls_protocol is None:
            await self.push(MUST_STARTTLS)
            return
        await super().smtp_MAIL(arg)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # The plain `<local@domain>` is read without the email package (see `smtp_paths`),
        # then held to aiosmtpd's local-part limit as aiosmtpd does; anything else is left
        # to aiosmtpd's own reading.
        found = plain_path(arg)
        if found is None:
            return super()._getaddr(arg)
        address, rest = found
        if self.local_part_limit and address.rindex("@") > self.local_part_limit:
            return None, None
        return address, rest

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = False

    def close_transport(self, *, farewell: bool = False) -> None:
        if self.transport is None:
            return
        if farewell:  # an idle session at the end of the drain: say why it is closed
            self._writer.write(SHUTTING_DOWN.format(self.hostname).encode() + b"\r\n")
        self.transport.close()


class TrackedSMTP(_Session, BufferedData, SMTP):
    pass


class TrackedLMTP(_Session, BufferedData, LMTP):
    pass


async def start_server(
    handler: IngressHandler,
    listen: tuple[str, int] | str,
    *,
    lmtp: bool = False,
    hostname: str = "",
    max_message_size: int = 26214400,
    sessions: SessionBook | None = None,
    big_messages: BigMessageSlots | None = None,
    security: ListenerTls | None = None,
) -> asyncio.Server:
    """Start one listener (TCP host/port or a unix socket path) in the running loop.

    `security` is read for each new session (TCP only): a reload applies to the next one.
    """
    protocol_class: type[TrackedSMTP | TrackedLMTP] = TrackedLMTP if lmtp else TrackedSMTP
    name = hostname or socket.gethostname()
    unix = isinstance(listen, str)

    def factory() -> SMTP:
        settings = security.current if security is not None and not unix else ListenerSecurity()
        session = _make(settings)
        if sessions is not None:
            sessions.add(session)
        return session

    def _make(settings: ListenerSecurity) -> TrackedSMTP | TrackedLMTP:
        session = protocol_class(
            handler,
            data_size_limit=handler.max_message_size or max_message_size,
            hostname=name,
            ident="pytrs ESMTP",
            decode_data=False,
            enable_SMTPUTF8=True,
            timeout=300,
            tls_context=settings.context,
            auth_exclude_mechanism=MECHANISMS if settings.users is None else (),
        )
        session.big_messages = big_messages
        session.book = sessions
        session.require_tls = settings.require_tls
        session.smtp_users = settings.users
        return session

    loop = asyncio.get_running_loop()
    if isinstance(listen, str):
        return await loop.create_unix_server(factory, path=listen)
    host, port = listen
    return await loop.create_server(factory, host=host, port=port, reuse_address=True)
