"""Composing the mail pytrs sends: headers, threading, ticket subject, loop markers, bytes.

Place in the flow: whatever decides that pytrs sends mail (an auto-response or an agent's
relayed answer in the postmaster's apply transaction, a notification, a reply from the web
view) builds a ``Draft``, turns it into final bytes with ``Composer.compose`` and hands the
result to ``schema.outbox_repo.enqueue`` in the same transaction. The outbox sender later
signs (DKIM) and delivers those bytes unchanged. Pure: no I/O (the key is read once, by
``Composer.from_config``), so every header is testable without a relay.

What every mail gets: a Message-ID under the system's domain (stored on the outbox row, and by
the caller on the article, so replies thread back), ``In-Reply-To``/``References`` to the
article it answers (RFC 5322 §3.6.4), the ticket number in the subject per ``[ticket]``
(Znuny's TicketSubjectBuild, ``routing.subject``), and the signed X-PyTRS-Loop marker
(``responders.marker``). Automatic mail also gets the RFC 3834 headers (``Auto-Submitted``,
``X-Auto-Response-Suppress: All``, ``Precedence: bulk``) so that other robots do not answer it
(REFERENCE §7, Part B #28); mail an agent wrote does not, so that a customer's out-of-office
still tells the agent.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from pytrs.config import Config, TicketConfig
from pytrs.responders import mime
from pytrs.responders.marker import HEADER as LOOP_HEADER
from pytrs.responders.marker import loop_secret_from_config, make_loop_marker
from pytrs.routing.subject import build_subject

AUTO_REPLIED = "auto-replied"  # an answer to a mail (auto reply, auto follow up, auto reject)
AUTO_GENERATED = "auto-generated"  # on pytrs's own initiative (notifications, reminders)
AUTOMATIC_KINDS = (AUTO_REPLIED, AUTO_GENERATED)

# RFC 5322 asks for References to carry the whole thread; long threads are trimmed to the
# first id (the thread's root) and the most recent ones, as mail clients do.
MAX_REFERENCES = 20
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_LINE_BREAKS = re.compile(r"[\r\n]+")


class ComposeError(ValueError):
    """A draft cannot become a mail (no recipient, an unusable address); ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Parent:
    """The article a mail answers, as stored (``article_data_mime``)."""

    message_id: str
    references: str = ""
    in_reply_to: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Draft:
    """A mail to send, as its author means it; ``Composer.compose`` adds everything else.

    Addresses are header values ("Name <addr>", several separated by commas). ``subject`` is
    the plain subject: with ``tn`` it is cleaned and tagged per ``[ticket]`` and prefixed per
    ``subject_kind`` (new | reply | forward). ``automatic`` is AUTO_REPLIED, AUTO_GENERATED or
    None for mail a person wrote. ``envelope_from`` "" means the From address; use "<>" for
    the null reverse-path.
    """

    sender: str
    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    reply_to: str = ""
    tn: str = ""
    subject_kind: str = "reply"
    answering: Parent | None = None
    automatic: str | None = None
    language: str = ""
    envelope_from: str = ""
    attachments: Sequence[Attachment] = ()
    extra_headers: Sequence[tuple[str, str]] = ()
    # A Message-ID chosen by the caller (a notification's carries its reply token); "" = new.
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class Composed:
    """The final unsigned bytes plus what the caller stores on the article and the outbox row.

    Has the attributes ``outbox_repo.enqueue`` takes (raw, envelope_from, recipients,
    message_id). ``from_``/``to``/``cc``/``reply_to`` are the header values as written.
    """

    raw: bytes
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    subject: str
    from_: str
    to: str
    cc: str = ""
    reply_to: str = ""
    in_reply_to: str = ""
    references: str = ""
    content_type: str = "text/plain; charset=utf-8"
    body: str = field(default="", repr=False)


class Composer:
    """Turns drafts into mail under one configuration; cheap, reusable, thread-safe."""

    def __init__(
        self, ticket: TicketConfig, loop_secret: bytes, message_id_domain: str = ""
    ) -> None:
        self.ticket = ticket
        self.loop_secret = loop_secret
        self.message_id_domain = message_id_domain

    @classmethod
    def from_config(cls, config: Config) -> Composer:
        """Raises ConfigError when the loop-marker key is missing or unreadable."""
        out = config.outbound
        return cls(config.ticket, loop_secret_from_config(out), out.message_id_domain)

    def compose(self, draft: Draft, *, now: datetime | None = None) -> Composed:
        """The mail for `draft`. Raises ComposeError naming the unusable part."""
        now = now or datetime.now(UTC)
        sender = _one_address(draft.sender, "sender")
        recipients = envelope_recipients([*draft.to, *draft.cc, *draft.bcc])
        if not recipients:
            raise ComposeError("to", "no recipient")
        message_id = draft.message_id or new_message_id(
            self.message_id_domain or sender.domain, now
        )
        subject = self.subject(draft)
        in_reply_to, references = thread_headers(draft.answering)
        headers = [
            ("Date", format_datetime(now.astimezone(UTC))), ("From", _one_line(draft.sender)),
            ("To", ", ".join(draft.to)), ("Cc", ", ".join(draft.cc)),
            ("Reply-To", draft.reply_to), ("Subject", subject), ("Message-ID", message_id),
            ("In-Reply-To", in_reply_to), ("References", references),
            ("Content-Language", draft.language),
            *automatic_headers(draft.automatic),
            (LOOP_HEADER, make_loop_marker(self.loop_secret, message_id, draft.tn, now)),
            *draft.extra_headers,
        ]  # fmt: skip
        headers = [(name, _one_line(value)) for name, value in headers if value]
        if draft.attachments:
            msg = EmailMessage(policy=policy.SMTP)
            for name, value in headers:
                msg[name] = value
            _set_body(msg, draft)
            raw, content_type = msg.as_bytes(), _content_type(msg)
        else:
            # The common case (every auto-response) without the header registry: ~10× faster.
            raw = mime.render(headers, _with_newline(draft.text), draft.html)
            content_type = (
                "text/plain; charset=utf-8" if draft.html is None else "multipart/alternative"
            )
        envelope_from = draft.envelope_from or sender.addr_spec
        return Composed(
            raw=raw,
            message_id=message_id,
            envelope_from="" if envelope_from == "<>" else envelope_from,
            recipients=recipients,
            subject=subject,
            from_=draft.sender,
            to=", ".join(draft.to),
            cc=", ".join(draft.cc),
            reply_to=draft.reply_to,
            in_reply_to=in_reply_to,
            references=references,
            content_type=content_type,
            body=draft.text,
        )

    def subject(self, draft: Draft) -> str:
        """The subject line of `draft`: tagged with its ticket number per ``[ticket]``."""
        subject = _one_line(draft.subject)
        if not draft.tn:
            return subject
        tc = self.ticket
        return build_subject(
            subject, draft.tn, hook=tc.hook, subject_format=tc.subject_format,
            kind=draft.subject_kind, re_prefix=tc.subject_re[0], fwd_prefix=tc.subject_fwd[0],
            re_prefixes=tc.subject_re, fwd_prefixes=tc.subject_fwd, size=tc.subject_size,
        )  # fmt: skip


def new_message_id(domain: str, now: datetime | None = None) -> str:
    """A fresh Message-ID under `domain`: time, 64 random bits and a "pytrs" tag."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return f"<{stamp}.{secrets.token_hex(8)}.pytrs@{domain.lower()}>"


def thread_headers(parent: Parent | None) -> tuple[str, str]:
    """(In-Reply-To, References) of an answer to `parent` (RFC 5322 §3.6.4)."""
    if parent is None or not _MESSAGE_ID.fullmatch(parent.message_id.strip()):
        return "", ""
    parent_id = parent.message_id.strip()
    # The parent's References, else its In-Reply-To when that names a single message.
    chain = _MESSAGE_ID.findall(parent.references)
    if not chain:
        replied = _MESSAGE_ID.findall(parent.in_reply_to)
        chain = replied if len(replied) == 1 else []
    chain = [i for i in chain if i != parent_id] + [parent_id]
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return parent_id, " ".join(chain)


def automatic_headers(kind: str | None) -> list[tuple[str, str]]:
    """RFC 3834 headers (and the Microsoft and legacy ones robots still read) for `kind`."""
    if kind is None:
        return []
    if kind not in AUTOMATIC_KINDS:
        raise ComposeError("automatic", f"must be {' or '.join(AUTOMATIC_KINDS)}, not {kind!r}")
    return [("Auto-Submitted", kind), ("X-Auto-Response-Suppress", "All"), ("Precedence", "bulk")]


def envelope_recipients(values: Sequence[str]) -> tuple[str, ...]:
    """The addr-specs of header values, each once (compared case-insensitively), in order.

    Raises ComposeError for an address that is not local@domain.
    """
    seen: dict[str, str] = {}
    lines = [_one_line(v) for v in values if v.strip()]
    for _name, address in (pair for line in lines for pair in mime.address_list(line)):
        if not _usable(address):
            raise ComposeError("to", f"not an e-mail address: {address!r}")
        seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def _one_address(value: str, field_name: str) -> Address:
    found = mime.address_list(_one_line(value))
    if len(found) != 1 or not _usable(found[0][1]):
        raise ComposeError(field_name, f"must be one e-mail address, not {value!r}")
    local, _, domain = found[0][1].rpartition("@")
    return Address(found[0][0], local, domain)


_WHITESPACE = re.compile(r"\s")  # the characters str.isspace calls white space


def _usable(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and "." in domain and not _WHITESPACE.search(address))


def _one_line(value: str) -> str:
    # A line break in a header value would let text from a customer's mail inject headers.
    return _LINE_BREAKS.sub(" ", value).strip()


def _content_type(msg: EmailMessage) -> str:
    kind = msg.get_content_type()
    return f"{kind}; charset=utf-8" if kind == "text/plain" else kind


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _set_body(msg: EmailMessage, draft: Draft) -> None:
    text = _with_newline(draft.text)
    # Quoted-printable keeps non-ASCII text readable and 7-bit, so no relay needs 8BITMIME;
    # ASCII is left to the library, which picks 7bit unless a line is too long for SMTP.
    cte = None if text.isascii() else "quoted-printable"
    msg.set_content(text, charset="utf-8", cte=cte)
    if draft.html is not None:
        msg.add_alternative(draft.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for item in draft.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(
            item.content, maintype=maintype, subtype=subtype or "octet-stream",
            filename=item.filename,
        )  # fmt: skip
