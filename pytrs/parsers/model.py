"""The records `parse_mail` hands to the postmaster: what a mail says, as plain data.

Everything downstream of the parser (filters, routing, article storage) reads these frozen records
and never the `email` objects they were built from, so the parser stays the only place that knows
about MIME quirks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pytrs.parsers.addresses import extract_addresses


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
class ParseLimits:
    """Bounds on the work one mail may cost; going past one yields warnings, never an error."""

    max_message_bytes: int = 64 * 1024 * 1024  # beyond: headers only, body/attachments skipped
    max_parts: int = 1000  # MIME parts walked
    max_depth: int = 50  # MIME nesting walked
    max_header_bytes: int = 256 * 1024  # one header field's raw size
    max_header_count: int = 1000  # header fields parsed; the rest of the block is skipped
    max_header_block_bytes: int = 1024 * 1024  # the header block's raw size; beyond: skipped
    max_html_bytes: int = 10 * 1024 * 1024  # HTML rendered/sanitised; beyond: a placeholder
    max_html_links: int = 20_000  # <a>/<img>/… elements before HTML degrades to a placeholder
    max_html_depth: int = 1000  # element nesting before HTML degrades to a placeholder


DEFAULT_LIMITS = ParseLimits()


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
    is_auto_reply: bool = False  # RFC 3834 and the common vendor markers
    is_out_of_office: bool = False  # an auto-reply that says its sender is away
    is_list: bool = False  # sent through a mailing list (List-Id and friends)
    loop: bool = False  # Znuny's X-OTRS-Loop rule (REFERENCE §1.3): never auto-answer it

    @property
    def is_bounce(self) -> bool:
        return self.bounce is not None

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

    def addresses(self, *names: str) -> tuple[str, ...]:
        """Return the lower-cased addr-specs of the named headers, in order, without duplicates.

        Malformed entries are skipped rather than reported, since recipient matching only needs
        what can be recognised as an address.
        """
        seen: dict[str, None] = {}
        for name in names:
            for value in self.header_all(name):
                for address in extract_addresses(value):
                    seen.setdefault(address, None)
        return tuple(seen)
