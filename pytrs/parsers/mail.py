"""`parse_mail`: raw bytes in, `ParsedMail` out — the parsing stage of the postmaster worker.

The mail is parsed once with the compat32 policy (several times faster than policy.default);
header text is decoded here rather than by the policy. Nothing in this stage raises: a failure
in any step degrades to a record holding what could be recovered plus a warning, because the
caller keeps the raw bytes and must still route the mail somewhere.
"""

from __future__ import annotations

from email import message_from_bytes
from email.errors import MissingHeaderBodySeparatorDefect
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from pytrs.parsers.addresses import extract_addresses
from pytrs.parsers.bodies import EMPTY, Content, split_parts
from pytrs.parsers.fields import (
    bracketed_ids,
    derived_message_id,
    message_id,
    parse_date,
    references,
)
from pytrs.parsers.headers import MAX_HEADER_CHARS, decode_header_value
from pytrs.parsers.model import ParsedMail
from pytrs.parsers.repair import rejoin_stray_header_lines

_MAX_WARNINGS = 100


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one raw mail; never raises, repairs are listed in `ParsedMail.warnings`."""
    warnings: list[str] = []
    if not isinstance(raw, bytes):
        # Callers may hand over a database buffer; anything else is a caller bug, still no raise.
        warnings.append(f"input was {type(raw).__name__}, not bytes")
        raw = (
            bytes(raw)
            if isinstance(raw, bytearray | memoryview)
            else str(raw).encode("utf-8", "surrogatepass")
        )
    msg, complete = _parse(raw, warnings)
    if complete and _lost_headers(msg):
        repaired = rejoin_stray_header_lines(raw)
        if repaired is not None:
            # The one case that parses twice: a broken header block, where the first parse
            # would hand Subject, From or Message-ID to the body.
            msg, complete = _parse(repaired, warnings)
            warnings.append("header line without colon joined to the previous header")
    headers = _decode_headers(msg, warnings)
    content = EMPTY
    try:
        if complete:
            content = split_parts(msg, warnings)
    except Exception as exc:  # A bug or an absurd structure; keep the header fields.
        warnings.append(f"MIME walk failed ({type(exc).__name__}), body and attachments lost")
    try:
        return _record(raw, headers, content, warnings)
    except Exception as exc:
        warnings.append(f"header fields failed ({type(exc).__name__})")
        return _minimal(raw, warnings)


def _parse(raw: bytes, warnings: list[str]) -> tuple[Message, bool]:
    """Return the parsed message and whether its MIME structure was parsed too."""
    try:
        return message_from_bytes(raw, policy=compat32), True
    except Exception as exc:  # RecursionError on absurd nesting, mostly.
        warnings.append(f"MIME structure unparsable ({type(exc).__name__}), headers only")
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(raw), False
    except Exception:
        warnings.append("headers unparsable")
        return Message(), False


def _lost_headers(msg: Message) -> bool:
    return any(isinstance(defect, MissingHeaderBodySeparatorDefect) for defect in msg.defects)


def _decode_headers(msg: Message, warnings: list[str]) -> tuple[tuple[str, str], ...]:
    decoded = []
    try:
        for name, raw_value in msg.raw_items():
            value = decode_header_value(str(raw_value), warnings, name)
            if len(value) > MAX_HEADER_CHARS:
                warnings.append(f"header {name} cut to 64 KiB")
                value = value[:MAX_HEADER_CHARS]
            decoded.append((name, value))
    except Exception as exc:
        warnings.append(f"header decoding failed ({type(exc).__name__})")
    return tuple(decoded)


def _record(
    raw: bytes, headers: tuple[tuple[str, str], ...], content: Content, warnings: list[str]
) -> ParsedMail:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)

    def first(name: str) -> str:
        found = values.get(name)
        return found[0] if found else ""

    in_reply_to = tuple(values.get("in-reply-to", ()))
    sender = first("from")
    senders = extract_addresses(sender)
    msgid = message_id(first("message-id"), raw, warnings)
    date = parse_date(first("date"), warnings)
    return ParsedMail(
        subject=first("subject"),
        from_=sender,
        from_address=senders[-1] if senders else "",
        reply_to=first("reply-to"),
        # Repeated To/Cc headers are illegal but seen; no recipient may go missing.
        to=", ".join(values.get("to", ())),
        cc=", ".join(values.get("cc", ())),
        message_id=msgid,
        in_reply_to=next(iter(bracketed_ids(" ".join(in_reply_to))), ""),
        references=references(tuple(values.get("references", ())), in_reply_to),
        date=date,
        content_type=content.content_type,
        body=content.body,
        html=content.html,
        attachments=content.attachments,
        headers=headers,
        warnings=_distinct(warnings),
    )


def _minimal(raw: bytes, warnings: list[str]) -> ParsedMail:
    """The last resort: nothing but the derived id and the warnings."""
    return ParsedMail(
        subject="",
        from_="",
        from_address="",
        reply_to="",
        to="",
        cc="",
        message_id=derived_message_id(raw),
        in_reply_to="",
        references=(),
        date=None,
        content_type=EMPTY.content_type,
        body="",
        html=None,
        attachments=(),
        headers=(),
        warnings=_distinct(warnings),
    )


def _distinct(warnings: list[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(warnings))
    if len(unique) > _MAX_WARNINGS:
        return (*unique[: _MAX_WARNINGS - 1], f"{len(unique) - _MAX_WARNINGS + 1} more warnings")
    return unique
