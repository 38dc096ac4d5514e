"""Nested messages (message/rfc822, message/delivery-status, …) as single attachments.

The MIME walk never descends into a nested message, so a bounced original can not become the
body. Instead its bytes are written back out and it is named after its subject, as Znuny does.
"""

from __future__ import annotations

import binascii
from email.errors import MissingHeaderBodySeparatorDefect
from email.generator import BytesGenerator, Generator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import Compat32, compat32
from io import BytesIO, StringIO
from typing import Any

from pytrs.parsers.headers import decode_header_value
from pytrs.parsers.parts import (
    children,
    decode_base64,
    payload,
    printable,
    raw_header,
    transfer_encoding,
)
from pytrs.parsers.repair import rejoin_stray_header_lines


class _Verbatim(Compat32):
    """A policy that writes header values exactly as parsed: folds, 8-bit bytes and all.

    compat32 would re-fold every header through `email.header.Header`, which changes the text
    and raises on values that merely look odd.
    """

    def fold(self, name: str, value: Any) -> str:
        return f"{name}: {_unify(value)}{self.linesep}"

    def fold_binary(self, name: str, value: Any) -> bytes:
        return self.fold(name, value).encode("utf-8", "surrogateescape")


def _unify(value: Any) -> str:
    # Folded values keep the original line ends; the generator writes "\n" everywhere else.
    return str(value).replace("\r\n", "\n")


_VERBATIM = _Verbatim()


def message_bytes(part: Message, warnings: list[str]) -> bytes:
    """Return the bytes of a message/* part: the nested mail, or the body of a DSN part."""
    if not part.is_multipart():
        return payload(part, warnings)
    subparts = children(part)
    try:
        if len(subparts) == 1 and part.get_content_subtype() != "delivery-status":
            nested = subparts[0]
            flat = _flatten(nested)
            if _encoded(part):
                return _decoded(flat, transfer_encoding(part), warnings)
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


def nested_filename(part: Message, content: bytes, warnings: list[str]) -> str:
    """Return "<subject>.eml" for a nested message, or "" when it has no subject."""
    subparts = children(part)
    if not subparts:
        return ""
    nested = subparts[0]
    if _encoded(part) and content:
        # The parsed child is the encoded text; the real headers are in the decoded bytes.
        nested = BytesHeaderParser(policy=compat32).parsebytes(content)
    if raw_header(nested, "subject") is None and content:
        # A broken header block may have hidden the Subject; only its headers are re-read.
        repaired = rejoin_stray_header_lines(content)
        if repaired is not None:
            nested = BytesHeaderParser(policy=compat32).parsebytes(repaired)
    subject = raw_header(nested, "subject")
    if subject is None:
        return ""
    name = printable(decode_header_value(subject, warnings, "Subject"))
    return f"{name}.eml" if name else ""


def _encoded(part: Message) -> bool:
    # RFC 2046 forbids encoding a message/rfc822 part, but some clients do; the parser then
    # reads the encoded text as if it were the nested mail.
    return transfer_encoding(part) in ("base64", "quoted-printable")


def _decoded(flat: bytes, encoding: str, warnings: list[str]) -> bytes:
    warnings.append(f"nested message in {encoding} decoded")
    if encoding == "base64":
        return decode_base64(flat, warnings)
    return binascii.a2b_qp(flat)


def _flatten(msg: Message) -> bytes:
    # The parsed tree is written back out, not sliced from the input; "From " lines are not
    # mangled, since the result is a file and not an mbox.
    buffer = BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=_VERBATIM).flatten(msg)
    except UnicodeEncodeError:
        # A payload the parser already decoded to text has no bytes form of its own; the text
        # generator plus utf-8 writes it anyway.
        text = StringIO()
        Generator(text, mangle_from_=False, policy=_VERBATIM).flatten(msg)
        return text.getvalue().encode("utf-8", "surrogateescape")
    return buffer.getvalue()
