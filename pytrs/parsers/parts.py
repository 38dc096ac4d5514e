"""Safe readers for one MIME part: raw headers, parameters, filename, payload, content type.

Used by the MIME walk (`bodies`) and for nested messages (`nested`). The stdlib's compat32
accessors are fast but have sharp edges on hostile input (8-bit parameter bytes replaced by
U+FFFD, exceptions from RFC 2231 continuations, text decoding inside `get_payload()`); these
helpers route around them and never raise.
"""

from __future__ import annotations

import re
from email.message import Message

from pytrs.parsers.charsets import decode_bytes
from pytrs.parsers.headers import decode_header_value, raw_header_text

_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)

Param = str | tuple[str, str, str]


def raw_header(part: Message, name: str) -> str | None:
    """Return the first value of header `name` (lower-case) as parsed, or None."""
    # raw_items() gives the value as parsed; get() would wrap 8-bit values in a Header object.
    for key, value in part.raw_items():
        if key.lower() == name:
            return value
    return None


def children(part: Message) -> list[Message]:
    """Return the sub-messages of a multipart or message/* part, [] for any other part."""
    # get_payload() without decoding is only safe on these: on a leaf it decodes the text.
    payload = part.get_payload() if part.is_multipart() else None
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, Message)]


def payload(part: Message, warnings: list[str]) -> bytes:
    """Return the transfer-decoded payload of a leaf part (b"" if there is none)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # Exotic transfer encodings; the raw mail is kept by the caller.
        warnings.append("undecodable transfer encoding")
        return b""
    return data if isinstance(data, bytes) else b""


def param(part: Message, name: str, header: str) -> Param | None:
    """Return a header parameter: a str, an RFC 2231 (charset, language, text) tuple, or None."""
    raw = raw_header(part, header)
    if raw is None:
        return None
    source = part
    if not raw.isascii():
        # 8-bit parameter bytes: decode them first, or the parameter parser replaces them.
        source = Message()
        source[header] = raw_header_text(raw)
    try:
        value = source.get_param(name, None, header)
    except Exception:  # e.g. TypeError on mixed "name*0" and "name*" continuations.
        return None
    if isinstance(value, tuple) and len(value) == 3:
        return (str(value[0] or ""), str(value[1] or ""), str(value[2]))
    return value if isinstance(value, str) else None


def charset(part: Message) -> str | None:
    """Return the declared charset label of a text part, or None."""
    raw = raw_header(part, "content-type")
    if raw is None:
        return None
    if "*" not in raw and raw.isascii():
        # The common case, without get_param's full parameter parse.
        match = _CHARSET.search(raw)
        return match.group(1) if match else None
    value = param(part, "charset", "content-type")
    return (value[2] if isinstance(value, tuple) else value) or None


def content_type(part: Message) -> str:
    """Return the normalised type plus the parameters as written (names, charset kept)."""
    main = part.get_content_type()
    raw = raw_header(part, "content-type")
    if raw is None:
        return main
    params = raw_header_text(raw).partition(";")[2].strip()
    return f"{main}; {params}" if params else main


def content_id(part: Message) -> str:
    """Return the Content-ID as written (with its angle brackets, if any), or ""."""
    raw = raw_header(part, "content-id")
    return raw_header_text(raw) if raw is not None else ""


def filename(part: Message, warnings: list[str]) -> str:
    """Return the decoded filename (Content-Disposition filename, else Content-Type name)."""
    value = param(part, "filename", "content-disposition") or param(part, "name", "content-type")
    if not value:
        return ""
    if isinstance(value, tuple):
        # RFC 2231 (charset, language, text): the text holds the percent-decoded bytes as
        # latin-1 characters.
        label, _language, text = value
        name, warning = decode_bytes(text.encode("latin-1", "replace"), label or None)
        if warning:
            warnings.append(f"filename: {warning}")
    else:
        name = value
    # Senders also put RFC 2047 words inside the quotes; every mail client decodes them.
    return printable(decode_header_value(name, warnings, "filename"))


def printable(name: str) -> str:
    """Return `name` without control characters, which only ever cause trouble in filenames."""
    if name.isprintable():
        return name.strip()
    return "".join(ch for ch in name if ch.isprintable()).strip()
