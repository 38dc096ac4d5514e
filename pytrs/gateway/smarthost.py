"""One SMTP connection to the configured relay (``[outbound] relay``), reused across mails.

Place in the flow: the outbox sender hands each signed mail to ``Smarthost.transact`` and gets
one ``Reply`` per recipient back; it never sees an exception for what the relay says. The
connection (aiosmtplib: STARTTLS or implicit TLS, AUTH) is opened on first use, checked with
NOOP before reuse after an idle spell, and dropped on any connection or protocol trouble, so
the next mail starts on a fresh one. Every network call has a deadline: aiosmtplib's per
command, one for connecting and one for the whole transaction, and the caller's: the moment by
which the relay's part of a mail must be over (the sender derives it from the claim's lease, so
that no mail is on the wire once its lease may have ended).

The transaction is written out (MAIL, each RCPT, DATA) rather than using ``sendmail`` so that
each recipient's own reply is kept even when DATA fails afterwards. What a ``Reply`` means for
the outbox row (sent, retried, failed) is ``outbound.delivery``'s business.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPRecipientRefused,
    SMTPResponseException,
)

from pytrs.config import OutboundConfig, listen_address

log = logging.getLogger(__name__)

NO_REPLY = 0  # the code of a "reply" that never came: connection failed, lost or timed out
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
# RFC 3463 X.1.Y codes that say the address itself is bad: bad mailbox (1), bad system (2),
# bad syntax (3), moved (6), null MX (10). Other 5xx (policy, content, size) are about the mail.
_BAD_ADDRESS_DETAILS = {1, 2, 3, 6, 10}


@dataclass(frozen=True, slots=True)
class Reply:
    """A relay's answer for one recipient; code NO_REPLY when there was none."""

    code: int
    text: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def bad_address(self) -> bool:
        """A permanent refusal saying the address does not exist (RFC 3463 5.1.x)."""
        found = _ENHANCED.match(self.text)
        return bool(
            self.permanent
            and found
            and found[1] == "5"
            and found[2] == "1"
            and int(found[3]) in _BAD_ADDRESS_DETAILS
        )

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip() if self.code else self.text


def no_reply(what: str) -> Reply:
    """The relay could not be reached or went away: try again later."""
    return Reply(NO_REPLY, what)


# A connection idle for longer than this is checked with NOOP before it is used again: relays
# close idle sessions (Postfix after 300 s), and a mail must not be the one that finds out.
IDLE_CHECK_SECONDS = 5.0


class Smarthost:
    """The relay connection of one sender task; not shared between concurrent tasks."""

    def __init__(self, config: OutboundConfig, *, helo_name: str | None = None) -> None:
        self.config = config
        self.timeout = config.timeout_seconds
        self._helo_name = helo_name or config.helo_name or None
        self._smtp: aiosmtplib.SMTP | None = None
        # Whether the last transact() could not even connect (rather than lose a transaction).
        self.unreachable = False
        self._last_used = 0.0

    async def transact(
        self, envelope_from: str, recipients: Sequence[str], data: bytes, *, deadline: float
    ) -> dict[str, Reply]:
        """Send one mail; each recipient's reply (NO_REPLY ones when the relay failed us).

        Nothing of it is on the wire after `deadline` (event loop time): a transaction still
        running then is dropped, its recipients unanswered.
        """
        self.unreachable = False
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                smtp = await self._connection()
        except (SMTPException, OSError, TimeoutError) as exc:
            # Cut off by the deadline, a NOOP's answer may still be on its way: start afresh.
            self._drop()
            self.unreachable = True
            # Refusals while connecting (a 554 greeting, a failed AUTH) are about us, not the
            # mail: they are retried like an unreachable relay, and logged for the admin.
            log.warning("relay %s: cannot connect: %s", self.config.relay, _describe(exc))
            return {r: no_reply(f"relay unreachable: {_describe(exc)}") for r in recipients}
        replies: dict[str, Reply] = {}
        stage = "MAIL FROM"
        try:
            # Per-command deadlines are aiosmtplib's; this one bounds the whole transaction.
            own = loop.time() + self.timeout * (3 + len(recipients))
            async with asyncio.timeout_at(min(own, deadline)):
                stage = "MAIL FROM"
                options = _mail_options(smtp, envelope_from, recipients, data)
                await smtp.mail(envelope_from, options=options, encoding=_encoding(envelope_from))
                accepted = []
                for recipient in recipients:
                    stage = f"RCPT TO:<{recipient}>"
                    try:
                        await smtp.rcpt(recipient, encoding=_encoding(recipient))
                        accepted.append(recipient)
                    except SMTPRecipientRefused as exc:
                        replies[recipient] = Reply(exc.code, exc.message)
                if not accepted:
                    await smtp.rset()
                    return replies
                stage = "DATA"
                answer = await smtp.data(data)
                replies.update((r, Reply(answer.code, answer.message)) for r in accepted)
        except SMTPResponseException as exc:
            # MAIL or DATA refused: the same answer for everyone not answered yet.
            replies.update(
                (r, Reply(exc.code, exc.message)) for r in recipients if r not in replies
            )
            await self._reset()
        except (SMTPException, OSError, TimeoutError, ValueError) as exc:
            # Lost, timed out or unusable mid-transaction: whatever was not answered is retried.
            # Lost after DATA was sent but before the reply, the relay may have taken the mail;
            # without its 250 we cannot know, so we retry (SMTP's own duplicate risk, RFC 1047).
            what = f"no reply to {stage}: {_describe(exc)}"
            replies.update((r, no_reply(what)) for r in recipients if r not in replies)
            self._drop()
        self._last_used = loop.time()
        return replies

    async def open(self) -> aiosmtplib.SMTP:
        """Connect now (EHLO, then STARTTLS and AUTH as configured) and return the session,
        for `pytrs doctor`, which QUITs with ``close`` and sends nothing. Raises SMTPException,
        OSError or TimeoutError."""
        return await self._connection()

    def abort(self) -> None:
        """Drop the connection at once (a cancelled transaction leaves it in an unknown state)."""
        self._drop()

    async def close(self) -> None:
        """QUIT politely (bounded by the timeout) and forget the connection."""
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await smtp.quit()
        except (SMTPException, OSError, TimeoutError):
            smtp.close()

    async def _connection(self) -> aiosmtplib.SMTP:
        loop = asyncio.get_running_loop()
        smtp = self._smtp
        if smtp is not None and smtp.is_connected:
            if loop.time() - self._last_used < IDLE_CHECK_SECONDS:
                return smtp
            try:
                async with asyncio.timeout(self.timeout):
                    await smtp.noop()
                return smtp
            except (SMTPException, OSError, TimeoutError):
                self._drop()
        if self._helo_name is None:
            self._helo_name = await asyncio.to_thread(socket.getfqdn)
        smtp = await self._client()
        # Connect, EHLO, STARTTLS, AUTH.
        async with asyncio.timeout(self.timeout * 4):
            await smtp.connect()
        self._smtp = smtp
        self._last_used = loop.time()
        return smtp

    async def _client(self) -> aiosmtplib.SMTP:
        out = self.config
        target = listen_address(out.relay)
        tls_context = await asyncio.to_thread(self._tls_context) if out.tls != "none" else None
        password = await asyncio.to_thread(out.resolve_password) if out.username else None
        return aiosmtplib.SMTP(
            hostname=None if isinstance(target, str) else target[0],
            port=None if isinstance(target, str) else target[1],
            socket_path=target if isinstance(target, str) else None,
            username=out.username or None,
            password=password,
            local_hostname=self._helo_name,
            timeout=self.timeout,
            use_tls=out.tls == "tls",
            start_tls=out.tls == "starttls",
            tls_context=tls_context,
        )

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file or None)
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _reset(self) -> None:
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await smtp.rset()
        except (SMTPException, OSError, TimeoutError):
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


def _encoding(address: str) -> str:
    return "ascii" if address.isascii() else "utf-8"


def _mail_options(
    smtp: aiosmtplib.SMTP, envelope_from: str, recipients: Sequence[str], data: bytes
) -> list[str]:
    options = []
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(data)}")
    if not data.isascii() and smtp.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    if not all(a.isascii() for a in (envelope_from, *recipients)):
        # Internationalised addresses; a relay without SMTPUTF8 refuses them for good (5xx).
        options.append("SMTPUTF8")
    return options


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {exc.message}"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, SMTPException) else f"{type(exc).__name__}: {text}"
