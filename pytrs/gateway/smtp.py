"""SMTP and LMTP ingress: aiosmtpd servers running inside the daemon's event loop.

The handler does almost nothing per message: it checks recipients against the system
addresses (550 for anything else — pytrs is never a relay; 553 for an address the inbox could
not store) and hands the bytes to the InboxWriter; "250" is sent only after the inbox commit
and names the inbox rows ("queued as 12", as MTAs do), so a mail can be followed from the
MTA's log into `pytrs inbox show`. Parsing and routing happen later, in the postmaster worker.
Status lines live in one place below.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import MutableSet, Sequence
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from pytrs.gateway.addresses import AddressBook, recipient_problem
from pytrs.gateway.inbox_writer import InboxWriter
from pytrs.gateway.smtp_data import BufferedData
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
        items = [
            InboxItem(
                source=self.source,
                raw=raw,
                recipient=rcpt.lower(),
                envelope_from=envelope.mail_from or "",
                peer=peer,
                trusted=self.trusted,
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

    async def handle_exception(self, error: Exception) -> str:
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


class _SessionTracking:
    """Lets the daemon's shutdown see which sessions are in DATA and close the others."""

    # RFC 5321 caps lines at 1,000 octets, but real mail breaks it (unwrapped base64, long
    # HTML lines) and the big MTAs accept it; refusing would bounce a customer's mail. Memory
    # stays bounded by the message size limit.
    line_length_limit = 1024 * 1024
    in_data = False
    transport: asyncio.BaseTransport | None

    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await super().smtp_DATA(arg)  # type: ignore[misc]
        finally:
            self.in_data = False

    def close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TrackedSMTP(_SessionTracking, BufferedData, SMTP):
    pass


class TrackedLMTP(_SessionTracking, BufferedData, LMTP):
    pass


async def start_server(
    handler: IngressHandler,
    listen: tuple[str, int] | str,
    *,
    lmtp: bool = False,
    hostname: str = "",
    max_message_size: int = 26214400,
    sessions: MutableSet[Any] | None = None,
    big_messages: BigMessageSlots | None = None,
) -> asyncio.Server:
    """Start one listener (TCP host/port or a unix socket path) in the running loop."""
    protocol_class: type[TrackedSMTP | TrackedLMTP] = TrackedLMTP if lmtp else TrackedSMTP
    name = hostname or socket.gethostname()

    def factory() -> SMTP:
        session = _make()
        if sessions is not None:
            sessions.add(session)
        return session

    def _make() -> SMTP:
        session = protocol_class(
            handler,
            data_size_limit=handler.max_message_size or max_message_size,
            hostname=name,
            ident="pytrs ESMTP",
            decode_data=False,
            enable_SMTPUTF8=True,
            timeout=300,
        )
        session.big_messages = big_messages
        return session

    loop = asyncio.get_running_loop()
    if isinstance(listen, str):
        return await loop.create_unix_server(factory, path=listen)
    host, port = listen
    return await loop.create_server(factory, host=host, port=port, reuse_address=True)
