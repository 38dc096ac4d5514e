"""The MIME walk: which part is the body, which is the HTML, which are attachments.

Second half of `parse_mail`, after the header fields. The tree the `email` package built is walked
once, iteratively and within bounds (parts and depth), in document order. The first text/plain
part not marked as a file is the body and the first such text/html part is the HTML; every other
leaf becomes an `Attachment`. Nested messages (message/*) are not descended into: each is one
attachment, so a bounce's original mail can never be mistaken for the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import MissingHeaderBodySeparatorDefect
from email.generator import BytesGenerator, Generator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from io import BytesIO, StringIO

from pytrs.parsers.charsets import decode_bytes
from pytrs.parsers.headers import decode_header_value, raw_header_text
from pytrs.parsers.htmltext import html_to_text
from pytrs.parsers.model import Attachment
from pytrs.parsers.repair import rejoin_stray_header_lines

MAX_PARTS = 1000
MAX_DEPTH = 50
BODY_CONTENT_TYPE = "text/plain; charset=utf-8"
_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)


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


def split_parts(msg: Message, warnings: list[str]) -> Content:
    """Walk `msg` and return its body, HTML and attachments; repairs are added to `warnings`."""
    body_leaf: _Leaf | None = None
    html_leaf: _Leaf | None = None
    files: list[_Leaf] = []
    for leaf in _leaves(msg, warnings):
        role = _role(leaf.part, warnings)
        if role == "text" and body_leaf is None:
            body_leaf = leaf
        elif role == "html" and html_leaf is None:
            html_leaf = leaf
        else:
            files.append(leaf)
    html = _text_of(html_leaf.part, warnings) if html_leaf else None
    if body_leaf is not None:
        body, content_type = _text_of(body_leaf.part, warnings), _body_type(body_leaf.part)
    else:
        # HTML-only mail: filters and follow-up detection still need the words.
        body, content_type = (html_to_text(html) if html else ""), BODY_CONTENT_TYPE
    attachments = tuple(
        _attachment_or_stub(leaf, number, warnings) for number, leaf in enumerate(files, start=1)
    )
    return Content(body, content_type, html, attachments)


def _leaves(msg: Message, warnings: list[str]) -> list[_Leaf]:
    # An explicit stack instead of recursion: the bounds below are ours, not the interpreter's.
    leaves: list[_Leaf] = []
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    visited = 0
    while stack:
        part, depth, in_alternative = stack.pop()
        visited += 1
        if visited > MAX_PARTS:
            warnings.append(f"more than {MAX_PARTS} MIME parts, the rest skipped")
            break
        for defect in part.defects:
            warnings.append(f"MIME defect: {type(defect).__name__}")
        # is_multipart() first: it spares the content-type parse for most leaves.
        if not part.is_multipart() or part.get_content_maintype() != "multipart":
            leaves.append(_Leaf(part, in_alternative))
        elif depth >= MAX_DEPTH:
            warnings.append(f"MIME nesting deeper than {MAX_DEPTH}, the rest skipped")
        else:
            inside = in_alternative or part.get_content_subtype() == "alternative"
            stack.extend((child, depth + 1, inside) for child in reversed(_children(part)))
    return leaves


def _children(part: Message) -> list[Message]:
    """Return the sub-messages of a multipart or message/* part, [] for any other part."""
    # get_payload() without decoding is only safe on these: on a leaf it decodes the text.
    payload = part.get_payload() if part.is_multipart() else None
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, Message)]


def _role(part: Message, warnings: list[str]) -> str:
    """Classify a leaf as "text", "html" or "file"."""
    try:
        return _classify(part, warnings)
    except Exception:  # The stdlib's parameter parser has edge cases that raise.
        warnings.append("unreadable MIME part kept as an attachment")
        return "file"


def _classify(part: Message, warnings: list[str]) -> str:
    maintype = part.get_content_maintype()
    if maintype == "message":
        return "file"
    disposition = part.get_content_disposition()
    if disposition == "attachment" or _param(part, "filename", "content-disposition"):
        return "file"
    content_type = part.get_content_type()
    if content_type == "text/plain":
        return "text"
    if content_type == "text/html":
        return "html"
    if maintype == "multipart":
        # A multipart whose boundary is missing or never occurs: the parser kept its body as
        # one string, and reading it as text keeps the words visible.
        warnings.append("multipart without a usable boundary read as text")
        return "text"
    return "file"


def _payload(part: Message, warnings: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # Exotic transfer encodings; the raw mail is kept by the caller.
        warnings.append("undecodable transfer encoding")
        return b""
    return data if isinstance(data, bytes) else b""


def _charset(part: Message) -> str | None:
    raw = _raw_header(part, "content-type")
    if raw is None:
        return None
    if "*" not in raw and raw.isascii():
        # The common case, without get_param's full parameter parse.
        match = _CHARSET.search(raw)
        return match.group(1) if match else None
    value = _param(part, "charset", "content-type")
    return (value[2] if isinstance(value, tuple) else value) or None


def _text_of(part: Message, warnings: list[str]) -> str:
    try:
        charset = _charset(part)
    except Exception:
        charset = None
    text, warning = decode_bytes(_payload(part, warnings), charset)
    if warning:
        warnings.append(f"body: {warning}")
    if "\x00" in text:
        warnings.append("NUL characters removed from text")
        text = text.replace("\x00", "")
    return text.replace("\r\n", "\n")


def _body_type(part: Message) -> str:
    # The text is returned decoded, so only format=flowed (which changes how lines join) is kept.
    raw = _raw_header(part, "content-type") or ""
    if (
        "flowed" not in raw.lower()
        or str(_param(part, "format", "content-type")).lower() != "flowed"
    ):
        return BODY_CONTENT_TYPE
    delsp = "; delsp=yes" if str(_param(part, "delsp", "content-type")).lower() == "yes" else ""
    return f"{BODY_CONTENT_TYPE}; format=flowed{delsp}"


def _attachment_or_stub(leaf: _Leaf, number: int, warnings: list[str]) -> Attachment:
    try:
        return _attachment(leaf, number, warnings)
    except Exception:  # One odd part must not cost the others; the raw mail keeps it whole.
        warnings.append(f"attachment {number} unreadable, kept as raw payload")
        return Attachment(
            filename=f"file-{number}",
            content_type="application/octet-stream",
            content=_payload(leaf.part, warnings),
            content_id="",
            disposition="attachment",
            content_alternative=leaf.in_alternative,
        )


def _attachment(leaf: _Leaf, number: int, warnings: list[str]) -> Attachment:
    part = leaf.part
    if part.get_content_maintype() == "message":
        content = _message_bytes(part, warnings)
        filename = _filename(part, warnings) or _nested_filename(part, content, warnings)
    else:
        content = _payload(part, warnings)
        filename = _filename(part, warnings)
    raw_cid = _raw_header(part, "content-id")
    content_id = raw_header_text(raw_cid) if raw_cid is not None else ""
    declared = part.get_content_disposition()
    inline = declared == "inline" or (declared is None and bool(content_id))
    return Attachment(
        filename=filename or f"file-{number}",
        content_type=_content_type(part),
        content=content,
        content_id=content_id,
        disposition="inline" if inline else "attachment",
        content_alternative=leaf.in_alternative,
    )


def _content_type(part: Message) -> str:
    """Return the normalised type plus the parameters as written (names, charset kept)."""
    content_type = part.get_content_type()
    raw = _raw_header(part, "content-type")
    if raw is None:
        return content_type
    params = raw_header_text(raw).partition(";")[2].strip()
    return f"{content_type}; {params}" if params else content_type


def _raw_header(part: Message, name: str) -> str | None:
    # raw_items() gives the value as parsed; get() would wrap 8-bit values in a Header object.
    for key, value in part.raw_items():
        if key.lower() == name:
            return value
    return None


def _param(part: Message, param: str, header: str) -> str | tuple[str, str, str] | None:
    raw = _raw_header(part, header)
    if raw is None:
        return None
    source = part
    if not raw.isascii():
        # 8-bit parameter bytes: decode them first, or the parameter parser replaces them.
        source = Message()
        source[header] = raw_header_text(raw)
    try:
        value = source.get_param(param, None, header)
    except Exception:  # e.g. TypeError on mixed "name*0" and "name*" continuations.
        return None
    if isinstance(value, tuple) and len(value) == 3:
        return (str(value[0] or ""), str(value[1] or ""), str(value[2]))
    return value if isinstance(value, str) else None


def _filename(part: Message, warnings: list[str]) -> str:
    value = _param(part, "filename", "content-disposition") or _param(part, "name", "content-type")
    if not value:
        return ""
    if isinstance(value, tuple):
        # RFC 2231 (charset, language, text): the text holds the percent-decoded bytes as
        # latin-1 characters.
        charset, _language, text = value
        name, warning = decode_bytes(text.encode("latin-1", "replace"), charset or None)
        if warning:
            warnings.append(f"filename: {warning}")
    else:
        name = value
    # Senders also put RFC 2047 words inside the quotes; every mail client decodes them.
    return _printable(decode_header_value(name, warnings, "filename"))


def _nested_filename(part: Message, content: bytes, warnings: list[str]) -> str:
    children = _children(part)
    if not children:
        return ""
    nested = children[0]
    if _raw_header(nested, "subject") is None and content:
        # A broken header block may have hidden the Subject; only its headers are re-read.
        repaired = rejoin_stray_header_lines(content)
        if repaired is not None:
            nested = BytesHeaderParser(policy=compat32).parsebytes(repaired)
    subject = _raw_header(nested, "subject")
    if subject is None:
        return ""
    name = _printable(decode_header_value(subject, warnings, "Subject"))
    return f"{name}.eml" if name else ""


def _printable(name: str) -> str:
    # Control characters in a filename only ever cause trouble downstream.
    if name.isprintable():
        return name.strip()
    return "".join(ch for ch in name if ch.isprintable()).strip()


def _message_bytes(part: Message, warnings: list[str]) -> bytes:
    """Return the bytes of a message/* part: the nested mail, or the body of a DSN part."""
    if not part.is_multipart():
        return _payload(part, warnings)
    children = _children(part)
    try:
        nested = children[0] if len(children) == 1 else None
        if nested is not None and part.get_content_subtype() != "delivery-status":
            flat = _flatten(nested)
            if any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in nested.defects):
                # The original had no blank line after its headers; the generator's would hide
                # the headers that follow a broken line from any later reader.
                flat = flat.replace(b"\n\n", b"\n", 1)
            return flat
        # message/delivery-status is parsed into header blocks; serialise the part and drop its
        # own header section (the generator writes "\n" line ends) to get the body back.
        return _flatten(part).partition(b"\n\n")[2]
    except Exception:  # Serialising an absurd structure must not lose the rest of the mail.
        warnings.append("nested message could not be serialised")
        return b""


def _flatten(msg: Message) -> bytes:
    # The parsed tree is written back out, not sliced from the input: headers are kept as
    # they were (maxheaderlen=0 means no refolding) and "From " lines are not mangled.
    buffer = BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0).flatten(msg)
    except UnicodeEncodeError:
        # Text the parser already decoded (it can hold U+FFFD) has no bytes form of its own;
        # the text generator plus utf-8 writes it anyway.
        text = StringIO()
        Generator(text, mangle_from_=False, maxheaderlen=0).flatten(msg)
        return text.getvalue().encode("utf-8", "surrogateescape")
    return buffer.getvalue()
