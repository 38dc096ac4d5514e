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
