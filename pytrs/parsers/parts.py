"""Safe readers for one MIME part: raw headers, parameters, filename, payload, content type.

Used by the MIME walk (`bodies`) and for nested messages (`nested`). The stdlib's compat32
accessors are fast but have sharp edges on hostile input (8-bit parameter bytes replaced by
U+FFFD, exceptions from RFC 2231 continuations, text decoding inside `get_payload()`); these
helpers route around them and never raise.
"""

from __future__ import annotations

import binascii
import re
from email.message import Message
from urllib.parse import unquote_to_bytes

from pytrs.parsers.charsets import decode_bytes
from pytrs.parsers.headers import decode_header_value, raw_header_text

_CHARSET = re.compile(r";\s*charset\s*=\s*[\"']?([^\"';\s]+)", re.IGNORECASE)
# One "; key=value" parameter, the value a quoted string (possibly unterminated) or a token.
_PARAMETER = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_CONTINUATION = re.compile(r"([^*]+)\*(\d{1,3})(\*?)")
_QUOTED_PAIR = re.compile(r"\\(.)")
_BASE64_SYNTAX = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n\t "
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
# A base64 payload is checked for noise this many characters at a time (bounded copies).
_CHECK_CHARS = 1024 * 1024
# "=" must start a hex pair or a soft line break (which may have transport padding before it).
_BAD_QP = re.compile(r"=(?![0-9A-Fa-f]{2}|[ \t]*(?:\r\n|\n|\r|$))")

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
    """Return the transfer-decoded payload of a leaf part (b"" if there is none).

    Damaged base64 and quoted-printable decode as far as they go, with a warning; the stdlib
    would hand back the undecoded text for base64 it cannot pad.
    """
    if part.is_multipart():
        return b""
    try:
        encoding = transfer_encoding(part)
        if encoding == "base64":
            return _base64(part, warnings)
        if encoding == "quoted-printable":
            text = part.get_payload()
            if isinstance(text, str) and _BAD_QP.search(text):
                warnings.append("bad quoted-printable sequences kept as written")
        data = part.get_payload(decode=True)
    except Exception:  # Exotic transfer encodings; the raw mail is kept by the caller.
        warnings.append("undecodable transfer encoding")
        return b""
    return data if isinstance(data, bytes) else b""


def transfer_encoding(part: Message) -> str:
    """Return the Content-Transfer-Encoding, lower-cased and stripped ("" when absent)."""
    raw = raw_header(part, "content-transfer-encoding")
    return raw.strip().lower() if raw else ""


def _base64(part: Message, warnings: list[str]) -> bytes:
    text = part.get_payload()
    if not isinstance(text, str):
        return b""
    if not text.isascii():
        # Characters outside ASCII are never base64; "ignore" drops them with the other noise.
        return decode_base64(text.encode("ascii", "ignore"), warnings)
    # binascii reads an ASCII str in place: no encoded copy of a big payload is made.
    if any(
        text[start : start + _CHECK_CHARS].encode("ascii").translate(None, _BASE64_SYNTAX)
        for start in range(0, len(text), _CHECK_CHARS)
    ):
        warnings.append("characters outside base64 skipped")
    return _decode_base64(text, warnings)


def decode_base64(data: bytes, warnings: list[str]) -> bytes:
    """Decode base64 leniently: noise skipped, a truncated end decoded as far as it goes."""
    if data.translate(None, _BASE64_SYNTAX):
        warnings.append("characters outside base64 skipped")
    return _decode_base64(data, warnings)


def _decode_base64(data: bytes | str, warnings: list[str]) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        pass
    # Cut short (a lost line, a truncated file): decode every whole byte that is there.
    if isinstance(data, str):
        data = data.encode("ascii")
    compact = _NOT_BASE64.sub(b"", data.partition(b"=")[0])
    if len(compact) % 4 == 1:
        compact = compact[:-1]
    decoded = binascii.a2b_base64(compact + b"=" * (-len(compact) % 4))
    warnings.append(f"base64 payload truncated, {len(decoded)} bytes decoded")
    return decoded


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
    """Return the decoded filename (Content-Disposition filename, else Content-Type name).

    RFC 2231 forms (`filename*=`, `filename*0*=` continuations) win over the plain parameter,
    which senders add as a fallback for old clients (RFC 6266); RFC 2047 words are decoded.
    """
    name = _name_param(part, "content-disposition", "filename", warnings)
    if not name:
        name = _name_param(part, "content-type", "name", warnings)
    if not name:
        return ""
    # Senders also put RFC 2047 words inside the quotes; every mail client decodes them.
    return printable(decode_header_value(name, warnings, "filename"))


def _name_param(part: Message, header: str, name: str, warnings: list[str]) -> str:
    """Return parameter `name` of `header`, RFC 2231 decoded; "" when absent.

    Parsed here rather than by `get_param`, which prefers whichever form comes first and raises
    on a mix of continuations and a single extended value.
    """
    raw = raw_header(part, header)
    if raw is None or name not in raw.lower():
        return ""
    plain: str | None = None
    extended: str | None = None
    pieces: dict[int, tuple[bool, str]] = {}
    for key, value in _PARAMETER.findall(raw_header_text(raw)):
        key, value = key.lower(), _unquote(value.strip())
        if key == name:
            plain = value if plain is None else plain
        elif key == f"{name}*":
            extended = value if extended is None else extended
        elif (piece := _CONTINUATION.fullmatch(key)) and piece[1] == name:
            pieces.setdefault(int(piece[2]), (piece[3] == "*", value))
    if extended is not None:
        return _rfc2231(extended, [], warnings)
    if pieces:
        ordered = [pieces[number] for number in sorted(pieces)]
        if ordered[0][0]:
            return _rfc2231(ordered[0][1], ordered[1:], warnings)
        return "".join(value for _extended, value in ordered)
    return plain or ""


def _rfc2231(first: str, more: list[tuple[bool, str]], warnings: list[str]) -> str:
    """Decode "charset'language'percent-text" plus continuations (extended or not)."""
    label, _language, text = first.split("'", 2) if first.count("'") >= 2 else ("", "", first)
    data = unquote_to_bytes(text)
    for is_extended, value in more:
        data += unquote_to_bytes(value) if is_extended else value.encode("utf-8")
    name, warning = decode_bytes(data, label or None)
    if warning:
        warnings.append(f"filename: {warning}")
    return name


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return value.strip('"')


def printable(name: str) -> str:
    """Return `name` without control characters, which only ever cause trouble in filenames."""
    if name.isprintable():
        return name.strip()
    return "".join(ch for ch in name if ch.isprintable()).strip()
