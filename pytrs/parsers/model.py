"""The records `parse_mail` hands to the postmaster: what a mail says, as plain data.

Everything downstream of the parser (filters, routing, article storage) reads these frozen records
and never the `email` objects they were built from, so the parser stays the only place that knows
about MIME quirks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

# The fields whose mailboxes `parse_mail` records (`ParsedMail.mailboxes`), lower-cased.
ADDRESS_FIELDS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender",
    "resent-to", "resent-cc", "resent-bcc", "delivered-to", "x-original-to", "envelope-to",
    "return-path", "errors-to", "disposition-notification-to",
})  # fmt: skip


class Mailbox(NamedTuple):
    """One entry of an address field: the decoded display name (for showing only) and the
    lower-cased addr-spec, read from the raw field (`parsers.addresses`)."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """One non-body MIME part, payload already transfer-decoded."""

    filename: str
    content_type: str
    content: bytes
    content_id: str
    disposition: str
    content_alternative: bool
    text: str = ""  # for a nested message/rfc822: its subject, sender and body, for search


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery-failure report says about the mail that failed."""

    original_message_id: str  # "<…>" of the bounced mail, "" when the report does not carry it
    recipient: str  # the address that failed (lower-cased addr-spec), "" when unknown
    status: str  # enhanced status code, e.g. "5.1.1"; "" when none could be found
    permanent: bool  # a 5.x.x / hard failure (False: 4.x.x, delayed, transient)
    diagnostic: str  # the remote server's text, one line, at most 500 characters
    reporting_mta: str  # who reported it, "" when unknown
    format: str  # "rfc3464" or the name of the non-standard format recognised (e.g. "qmail")


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """A complaint about a mail: an abuse feedback report (ARF, RFC 5965) or a provider's own
    complaint notice."""

    feedback_type: str  # ARF's Feedback-Type, lower-cased: "abuse", "fraud", "not-spam" …
    recipient: str  # who complained (lower-cased addr-spec), "" when the report hides it
    original_message_id: str  # "<…>" of the mail complained about, "" when not carried
    reporter: str  # the reporting service (User-Agent, or the sender's domain)
    format: str  # "arf", or the non-standard format recognised (e.g. "jmrp", "amazon-ses")


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """A parsed mail: decoded header fields, the chosen body, the attachments, the repairs made."""

    subject: str
    from_: str
    from_address: str
    reply_to: str
    to: str
    cc: str
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    date: datetime | None
    content_type: str
    body: str
    html: str | None
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]
    # Everything below has a default so that records can be built field by field in stages.
    raw: bytes = b""  # the input, unchanged
    safe_html: str | None = None  # `html` sanitised for display (nh3 allow-list, cid: mapped)
    bounce: Bounce | None = None  # set when the mail is a delivery-failure report
    feedback: FeedbackReport | None = None  # set when the mail is a complaint about a mail
    is_auto_reply: bool = False  # RFC 3834 and the common vendor markers
    is_out_of_office: bool = False  # an auto-reply that says its sender is away
    is_list: bool = False  # sent through a mailing list (List-Id and friends)
    loop: bool = False  # Znuny's X-OTRS-Loop rule (REFERENCE §1.3): never auto-answer it
    # Lower-cased field name → its mailboxes, for the fields in `ADDRESS_FIELDS`
    # (From and Reply-To: the first field only, like `from_` and `reply_to`).
    address_fields: tuple[tuple[str, tuple[Mailbox, ...]], ...] = ()

    @property
    def is_bounce(self) -> bool:
        return self.bounce is not None

    @property
    def is_feedback_report(self) -> bool:
        return self.feedback is not None

    def header(self, name: str) -> str:
        """Return the first value of header `name` (case-insensitive), or "" if absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return ""

    def header_all(self, name: str) -> tuple[str, ...]:
        """Return every value of header `name` (case-insensitive), in message order."""
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key.lower() == wanted)

    def mailboxes(self, *names: str) -> tuple[Mailbox, ...]:
        """Return the mailboxes of the named address fields, in order, each address once.

        Addresses come from the raw fields, never from decoded display text; anything that
        pytrs sends mail to is taken from here. Raises KeyError for a field that is not
        recorded (not in `ADDRESS_FIELDS`).
        """
        by_field = dict(self.address_fields)
        seen: dict[str, Mailbox] = {}
        for name in names:
            wanted = name.lower()
            if wanted not in ADDRESS_FIELDS:
                raise KeyError(f"{name} is not an address field")
            for mailbox in by_field.get(wanted, ()):
                seen.setdefault(mailbox.address, mailbox)
        return tuple(seen.values())

    def addresses(self, *names: str) -> tuple[str, ...]:
        """Return the lower-cased addr-specs of the named address fields (see `mailboxes`)."""
        return tuple(mailbox.address for mailbox in self.mailboxes(*names))
