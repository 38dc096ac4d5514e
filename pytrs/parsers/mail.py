"""`parse_mail`: raw bytes in, `ParsedMail` out — the parsing stage of the postmaster worker.

The mail is parsed once with the compat32 policy (several times faster than policy.default);
header text is decoded here rather than by the policy. Nothing in this stage raises: a failure
in any step degrades to a record holding what could be recovered plus a warning, because the
caller keeps the raw bytes and must still route the mail somewhere. `ParseLimits` bound the work:
a mail over `max_message_bytes` is read for its headers only, and the header block is cut to its
bounds before the `email` package sees it, every MIME part's too (`headblock`, `partheads`).

Memory is bounded too, because a mail at the size limit should cost a small multiple of its size:
the stdlib parser is fed in chunks (it would otherwise hold the whole mail as text and as a list
of lines at once), and the message tree is dropped as soon as the parts are taken out of it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from email.errors import MissingHeaderBodySeparatorDefect
from email.feedparser import FeedParser
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from pytrs.parsers import boundary
from pytrs.parsers.addresses import parse_mailboxes
from pytrs.parsers.bodies import EMPTY, Content, split_parts
from pytrs.parsers.charsets import resolve_charset
from pytrs.parsers.classify import classify
from pytrs.parsers.fields import (
    bracketed_ids,
    derived_message_id,
    message_id,
    parse_date,
    references,
)
from pytrs.parsers.headblock import bound_header_block
from pytrs.parsers.headers import MAX_HEADER_CHARS, decode_header_value, raw_header_text
from pytrs.parsers.html import render_html
from pytrs.parsers.model import ADDRESS_FIELDS, Attachment, Mailbox, ParsedMail
from pytrs.parsers.partheads import bound_part_header_blocks, declared_boundaries
from pytrs.parsers.parts import charset
from pytrs.parsers.repair import rejoin_stray_header_lines
from pytrs.vocabulary.parse_limits import DEFAULT_LIMITS, ParseLimits

_MAX_WARNINGS = 100
# The stdlib parser is fed this many bytes at a time, decoded to text chunk by chunk: its own
# `message_from_bytes` first turns the whole mail into one string, a second copy of it.
_FEED_BYTES = 64 * 1024
# Fields a mail should carry once; when repeated, the first is the one every client shows.
_SINGLE = ("subject", "from", "date", "message-id", "reply-to", "in-reply-to")
# Recipient fields are joined when repeated, so that nobody who was addressed goes missing.
_JOINED = ("to", "cc")


# Once per process: the stdlib MIME parser's per-boundary regex compile is a quarter of its cost.
boundary.install()


def parse_mail(
    raw: bytes, limits: ParseLimits = DEFAULT_LIMITS, *, nested: bool = False
) -> ParsedMail:
    """Parse one raw mail; never raises, repairs are listed in `ParsedMail.warnings`.

    `ParsedMail.raw` is the input itself, whatever happened to the rest. `nested` parses a
    message found inside another one: fields only, no HTML rendering or classification.
    """
    warnings: list[str] = []
    if not isinstance(raw, bytes):
        # Callers may hand over a database buffer; anything else is a caller bug, still no raise.
        warnings.append(f"input was {type(raw).__name__}, not bytes")
        raw = (
            bytes(raw)
            if isinstance(raw, bytearray | memoryview)
            else str(raw).encode("utf-8", "surrogatepass")
        )
    msg, complete = _parse_within(raw, limits, warnings)
    headers, address_values = _decode_headers(msg, warnings, limits)
    content = EMPTY
    try:
        if complete:
            content = split_parts(msg, warnings, limits)
    except Exception as exc:  # A bug or an absurd structure; keep the header fields.
        warnings.append(f"MIME walk failed ({type(exc).__name__}), body and attachments lost")
    # Everything needed is out of the tree now; its encoded payloads go before HTML rendering.
    del msg
    try:
        record = _record(raw, headers, address_values, content, warnings)
    except Exception as exc:
        warnings.append(f"header fields failed ({type(exc).__name__})")
        return _minimal(raw, warnings)
    if not nested:
        record = _enrich(record, limits)
    return record


def _nested_text(
    attachments: tuple[Attachment, ...], limits: ParseLimits
) -> tuple[Attachment, ...] | None:
    """Give each forwarded or bounced message (message/rfc822 attachment) its readable text,
    so that what it says can be searched; nested messages are read one level deep. None when
    there is none."""
    if not any(a.content_type.startswith("message/rfc822") for a in attachments):
        return None
    with_text = []
    for part in attachments:
        if part.content_type.startswith("message/rfc822") and not part.text:
            inner = parse_mail(part.content, limits, nested=True)
            body = inner.body or (render_html(inner.html, None, limits).text if inner.html else "")
            text = f"Subject: {inner.subject}\nFrom: {inner.from_}\n\n{body}"
            part = replace(part, text=text)
        with_text.append(part)
    return tuple(with_text)


def _enrich(mail: ParsedMail, limits: ParseLimits) -> ParsedMail:
    """Add what is derived from the record: the HTML for display (and the text of HTML-only
    mail), the text of nested messages, and the bounce / auto-reply / list / loop
    classification."""
    warnings = list(mail.warnings)
    changes: dict[str, Any] = {}
    if mail.html is not None:
        # Inline images stay `cid:` references to this mail's own parts; the web view maps
        # them to attachment URLs. References to parts the mail does not have are dropped.
        cids = (a.content_id.strip().strip("<>") for a in mail.attachments)
        cid_map = {cid: f"cid:{cid}" for cid in cids if cid}
        # The text rendering is only needed for HTML-only mail (most HTML has a text twin).
        rendered = render_html(mail.html, cid_map, limits, text=not mail.body)
        changes["safe_html"] = rendered.safe_html
        warnings.extend(rendered.warnings)
        if not mail.body:
            changes["body"] = rendered.text
    attachments = _nested_text(mail.attachments, limits)
    if attachments is not None:
        changes["attachments"] = attachments
    if changes:
        mail = replace(mail, **changes)  # classification reads the rendered text too
    result = classify(mail)
    derived: dict[str, Any] = {
        "bounce": result.bounce,
        "feedback": result.feedback,
        "is_auto_reply": result.is_auto_reply,
        "is_out_of_office": result.is_out_of_office,
        "is_list": result.is_list,
        "loop": result.loop,
        "warnings": _distinct(warnings),
    }
    if all(getattr(mail, name) == value for name, value in derived.items()):
        return mail  # Most mail: nothing flagged, no new warning, so no copy to make.
    return replace(mail, **derived)


def _parse_within(raw: bytes, limits: ParseLimits, warnings: list[str]) -> tuple[Message, bool]:
    """Parse as much of `raw` as the limits allow; say whether the MIME structure was parsed."""
    if len(raw) > limits.max_message_bytes:
        warnings.append(
            f"message larger than {limits.max_message_bytes} bytes: headers only, "
            "body and attachments skipped"
        )
        return _parse_head(raw, limits, warnings), False
    bounded = bound_header_block(
        raw, limits.max_header_count, limits.max_header_block_bytes, warnings
    )
    bounded = _within_part_limit(bounded, limits.max_parts, warnings)
    bounded = bound_part_header_blocks(
        bounded, limits.max_header_count, limits.max_header_block_bytes, warnings
    )
    msg, complete = _parse(bounded, warnings)
    if complete and _lost_headers(msg):
        repaired = rejoin_stray_header_lines(bounded)
        if repaired is not None:
            # The one case that parses twice: a broken header block, where the first parse
            # would hand Subject, From or Message-ID to the body.
            msg, complete = _parse(repaired, warnings)
            warnings.append("header line without colon joined to the previous header")
    return msg, complete


def _parse(raw: bytes, warnings: list[str]) -> tuple[Message, bool]:
    """Return the parsed message and whether its MIME structure was parsed too."""
    try:
        return _message_from_bytes(raw), True
    except Exception as exc:  # RecursionError on absurd nesting, mostly.
        warnings.append(f"MIME structure unparsable ({type(exc).__name__}), headers only")
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(raw), False
    except Exception:
        warnings.append("headers unparsable")
        return Message(), False


def _message_from_bytes(raw: bytes) -> Message:
    """`email.message_from_bytes` with the compat32 policy, fed chunk by chunk."""
    parser = FeedParser(policy=compat32)
    view = memoryview(raw)
    for start in range(0, len(raw), _FEED_BYTES):
        # What BytesParser does to the whole mail: 8-bit bytes become surrogate escapes.
        parser.feed(str(view[start : start + _FEED_BYTES], "ascii", "surrogateescape"))
    return parser.close()


def _parse_head(raw: bytes, limits: ParseLimits, warnings: list[str]) -> Message:
    """Parse only the header block of an oversized mail, within the header block bounds."""
    head = bound_header_block(
        raw, limits.max_header_count, limits.max_header_block_bytes, warnings, body=False
    )
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(head)
    except Exception:
        warnings.append("headers unparsable")
        return Message()


def _within_part_limit(raw: bytes, max_parts: int, warnings: list[str]) -> bytes:
    """Return `raw`, or its start up to the delimiter that opens one part too many.

    The stdlib parser builds every part before the MIME walk can count them: a 1 MB mail of
    tiny parts would cost seconds and tens of megabytes. Only mail with more delimiter-like
    lines than the limit allows pays for finding its declared boundaries.
    """
    if raw.count(b"\n--") + raw.count(b"\r--") <= max_parts:
        return raw
    boundaries = declared_boundaries(raw)
    if not boundaries:
        return raw
    delimiter = re.compile(rb"[\r\n]--(?:" + b"|".join(map(re.escape, boundaries)) + rb")")
    for count, match in enumerate(delimiter.finditer(raw), start=1):
        if count > max_parts:
            warnings.append(f"more than {max_parts} MIME parts, the rest skipped")
            return raw[: match.start() + 1]
    return raw


def _lost_headers(msg: Message) -> bool:
    return any(isinstance(defect, MissingHeaderBodySeparatorDefect) for defect in msg.defects)


def _decode_headers(
    msg: Message, warnings: list[str], limits: ParseLimits
) -> tuple[tuple[tuple[str, str], ...], list[tuple[str, str]]]:
    """(decoded header fields, raw text of the address fields): addresses are read from the
    raw text, where encoded words cannot pass for addresses (`parsers.addresses`)."""
    decoded = []
    address_values = []
    try:
        # Raw 8-bit header bytes that are not utf-8 are most likely in the body's charset.
        body_charset = resolve_charset(charset(msg) or "")
        hint = None if body_charset in (None, "ascii", "utf-8") else body_charset
        for name, raw_value in msg.raw_items():
            value = decode_header_value(
                str(raw_value), warnings, name, max_bytes=limits.max_header_bytes, charset=hint
            )
            if len(value) > MAX_HEADER_CHARS:
                warnings.append(f"header {name} cut to 64 KiB")
                value = value[:MAX_HEADER_CHARS]
            decoded.append((name, value))
            if name.lower() in ADDRESS_FIELDS:
                raw_text = raw_header_text(str(raw_value), limits.max_header_bytes)
                address_values.append((name.lower(), raw_text))
    except Exception as exc:
        warnings.append(f"header decoding failed ({type(exc).__name__})")
    return tuple(decoded), address_values


def _address_fields(
    values: list[tuple[str, str]],
) -> tuple[tuple[str, tuple[Mailbox, ...]], ...]:
    """Mailboxes per address field; repeated fields are joined, except those a mail carries
    once (From, Reply-To), of which the first counts, as for their text."""
    found: dict[str, list[Mailbox]] = {}
    for name, value in values:
        if name in _SINGLE and name in found:
            continue
        found.setdefault(name, []).extend(parse_mailboxes(value))
    return tuple((name, tuple(mailboxes)) for name, mailboxes in found.items())


def _record(
    raw: bytes,
    headers: tuple[tuple[str, str], ...],
    address_values: list[tuple[str, str]],
    content: Content,
    warnings: list[str],
) -> ParsedMail:
    values: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value)
        names.setdefault(name.lower(), name)
    for key in (*_SINGLE, *_JOINED):
        count = len(values.get(key, ()))
        if count > 1:
            kept = "joined" if key in _JOINED else "the first kept"
            warnings.append(f"{count} {names[key]} headers, {kept}")

    def first(name: str) -> str:
        found = values.get(name)
        return found[0] if found else ""

    in_reply_to = tuple(values.get("in-reply-to", ()))
    sender = first("from")
    msgid = message_id(first("message-id"), raw, warnings)
    date = parse_date(first("date"), warnings)
    fields = _address_fields(address_values)
    senders = dict(fields).get("from", ())
    return ParsedMail(
        subject=first("subject"),
        from_=sender,
        # The last: clients that write an address as the display name ("a@b <c@d>", unquoted)
        # put the real one in the angle brackets.
        from_address=senders[-1].address if senders else "",
        reply_to=first("reply-to"),
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
        raw=raw,
        address_fields=fields,
    )


def _minimal(raw: bytes, warnings: list[str]) -> ParsedMail:
    """The last resort: nothing but the derived id, the raw bytes and the warnings."""
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
        raw=raw,
    )


def _distinct(warnings: list[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(warnings))
    if len(unique) > _MAX_WARNINGS:
        return (*unique[: _MAX_WARNINGS - 1], f"{len(unique) - _MAX_WARNINGS + 1} more warnings")
    return unique
