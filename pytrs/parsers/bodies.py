"""The MIME walk: which part is the body, which is the HTML, which are attachments.

Second half of `parse_mail`, after the header fields. The tree the `email` package built is walked
once, iteratively and within the bounds of `ParseLimits` (parts and depth), in document order.
The first text/plain part not marked as a file is the body and the first such text/html part is
the HTML; every other leaf becomes an `Attachment`. Nested messages (message/*) are not descended
into: each is one attachment, so a bounce's original mail can never be mistaken for the body. A
multipart whose declared boundary never occurs is re-read with the boundary its body uses. The
walk consumes the tree: an attachment's encoded payload is dropped once it is decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.errors import NoBoundaryInMultipartDefect, StartBoundaryNotFoundDefect
from email.message import Message
from email.policy import compat32

from pytrs.parsers.charsets import decode_bytes
from pytrs.parsers.model import Attachment
from pytrs.parsers.nested import message_bytes, nested_filename
from pytrs.parsers.parts import (
    charset,
    children,
    content_id,
    content_type,
    filename,
    param,
    payload,
    raw_header,
)
from pytrs.vocabulary.parse_limits import DEFAULT_LIMITS, ParseLimits

BODY_CONTENT_TYPE = "text/plain; charset=utf-8"
_LOST_BOUNDARY = (NoBoundaryInMultipartDefect, StartBoundaryNotFoundDefect)
# A delimiter line: "--" and an RFC 2046 boundary (1-70 bchars, not ending in a space).
_BOUNDARY_LINE = re.compile(
    rb"^--([0-9A-Za-z'()+_,./:=?-](?:[0-9A-Za-z'()+_,./:=? -]{0,68}[0-9A-Za-z'()+_,./:=?-])?)"
    rb"[ \t]*\r?$",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Content:
    """What the walk found: the body text, its content type, the HTML and the attachments."""

    body: str
    content_type: str
    html: str | None
    attachments: tuple[Attachment, ...]


EMPTY = Content("", BODY_CONTENT_TYPE, None, ())


@dataclass(frozen=True, slots=True)
class _Leaf:
    part: Message
    in_alternative: bool


def split_parts(msg: Message, warnings: list[str], limits: ParseLimits = DEFAULT_LIMITS) -> Content:
    """Walk `msg` and return its body, HTML and attachments; repairs are added to `warnings`."""
    body_leaf: _Leaf | None = None
    html_leaf: _Leaf | None = None
    files: list[_Leaf] = []
    for leaf in _leaves(msg, warnings, limits):
        role = _role(leaf.part, warnings)
        if role == "text" and body_leaf is None:
            body_leaf = leaf
        elif role == "html" and html_leaf is None:
            html_leaf = leaf
        else:
            files.append(leaf)
    html = _text_of(html_leaf.part, warnings) if html_leaf else None
    if body_leaf is not None:
        body, body_type = _text_of(body_leaf.part, warnings), _body_type(body_leaf.part)
    else:
        # HTML-only mail: the parse stage fills the body from the bounded HTML rendering.
        body, body_type = "", BODY_CONTENT_TYPE
    attachments = []
    for number, leaf in enumerate(files, start=1):
        attachments.append(_attachment_or_stub(leaf, number, warnings))
        # Nothing reads the encoded payload again: it goes before the next part is decoded,
        # so that encoded and decoded copies of big attachments do not pile up.
        leaf.part.set_payload("")
    return Content(body, body_type, html, tuple(attachments))


def _leaves(msg: Message, warnings: list[str], limits: ParseLimits) -> list[_Leaf]:
    # An explicit stack instead of recursion: the bounds below are ours, not the interpreter's.
    leaves: list[_Leaf] = []
    # (part, depth, inside multipart/alternative, already re-parsed with a found boundary)
    stack: list[tuple[Message, int, bool, bool]] = [(msg, 0, False, False)]
    visited = 0
    while stack:
        part, depth, in_alternative, reparsed = stack.pop()
        visited += 1
        if visited > limits.max_parts:
            warnings.append(f"more than {limits.max_parts} MIME parts, the rest skipped")
            break
        for defect in part.defects:
            warnings.append(f"MIME defect: {type(defect).__name__}")
        # is_multipart() first: it spares the content-type parse for most leaves.
        if part.is_multipart() and (mime_type := part.get_content_type()).startswith("multipart/"):
            if depth >= limits.max_depth:
                warnings.append(f"MIME nesting deeper than {limits.max_depth}, the rest skipped")
                continue
            inside = in_alternative or mime_type == "multipart/alternative"
            stack.extend((child, depth + 1, inside, False) for child in reversed(children(part)))
            continue
        repaired = None if reparsed else _with_found_boundary(part, warnings)
        if repaired is not None:
            stack.append((repaired, depth, in_alternative, True))
        else:
            leaves.append(_Leaf(part, in_alternative))
    return leaves


def _with_found_boundary(part: Message, warnings: list[str]) -> Message | None:
    """Re-parse a multipart whose declared boundary is missing or never occurs, or None.

    The boundary is taken from the first delimiter-like line of the body, provided it occurs
    again (a second part or the close delimiter); mailers that mangle the Content-Type header
    (quoting, folding) leave the body intact.
    """
    if not any(isinstance(defect, _LOST_BOUNDARY) for defect in part.defects):
        return None
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    found = _BOUNDARY_LINE.search(data)
    if found is None or data.count(b"--" + found.group(1)) < 2:
        return None
    boundary = found.group(1)
    head = b'Content-Type: multipart/%s; boundary="%s"\n\n' % (
        part.get_content_subtype().encode("ascii", "replace"),
        boundary,
    )
    try:
        repaired = message_from_bytes(head + data, policy=compat32)
    except Exception:  # RecursionError on absurd nesting inside; the text stays the body.
        return None
    shown = boundary.decode("ascii", "replace")
    warnings.append(f"multipart boundary not found, {shown!r} from the body used")
    return repaired


def _role(part: Message, warnings: list[str]) -> str:
    """Classify a leaf as "text", "html" or "file"."""
    try:
        return _classify(part, warnings)
    except Exception:  # The stdlib's parameter parser has edge cases that raise.
        warnings.append("unreadable MIME part kept as an attachment")
        return "file"


def _classify(part: Message, warnings: list[str]) -> str:
    # One content-type parse: get_content_maintype() and get_content_subtype() each redo it.
    mime_type = part.get_content_type()
    maintype = mime_type.partition("/")[0]
    if maintype == "message":
        return "file"
    disposition = part.get_content_disposition()
    if disposition == "attachment" or param(part, "filename", "content-disposition"):
        return "file"
    if mime_type == "text/plain":
        return "text"
    if mime_type == "text/html":
        return "html"
    if maintype == "multipart":
        # A multipart whose boundary is missing or never occurs: the parser kept its body as
        # one string, and reading it as text keeps the words visible.
        warnings.append("multipart without a usable boundary read as text")
        return "text"
    return "file"


def _text_of(part: Message, warnings: list[str]) -> str:
    text, warning = decode_bytes(payload(part, warnings), charset(part))
    if warning:
        warnings.append(f"body: {warning}")
    if "\x00" in text:
        warnings.append("NUL characters removed from text")
        text = text.replace("\x00", "")
    if "\r" not in text:
        return text
    # Stored text has "\n" line ends; old Mac mail and broken gateways write bare CRs.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _body_type(part: Message) -> str:
    # The text is returned decoded, so only format=flowed (which changes how lines join) is kept.
    raw = raw_header(part, "content-type") or ""
    if (
        "flowed" not in raw.lower()
        or str(param(part, "format", "content-type")).lower() != "flowed"
    ):
        return BODY_CONTENT_TYPE
    delsp = "; delsp=yes" if str(param(part, "delsp", "content-type")).lower() == "yes" else ""
    return f"{BODY_CONTENT_TYPE}; format=flowed{delsp}"


def _attachment_or_stub(leaf: _Leaf, number: int, warnings: list[str]) -> Attachment:
    try:
        return _attachment(leaf, number, warnings)
    except Exception:  # One odd part must not cost the others; the raw mail keeps it whole.
        warnings.append(f"attachment {number} unreadable, kept as raw payload")
        return Attachment(
            filename=f"file-{number}",
            content_type="application/octet-stream",
            content=payload(leaf.part, warnings),
            content_id="",
            disposition="attachment",
            content_alternative=leaf.in_alternative,
        )


def _attachment(leaf: _Leaf, number: int, warnings: list[str]) -> Attachment:
    part = leaf.part
    if part.get_content_maintype() == "message":
        content = message_bytes(part, warnings)
        name = filename(part, warnings) or nested_filename(part, content, warnings)
    else:
        content = payload(part, warnings)
        name = filename(part, warnings)
    cid = content_id(part)
    declared = part.get_content_disposition()
    inline = declared == "inline" or (declared is None and bool(cid))
    return Attachment(
        filename=name or f"file-{number}",
        content_type=content_type(part),
        content=content,
        content_id=cid,
        disposition="inline" if inline else "attachment",
        content_alternative=leaf.in_alternative,
    )
