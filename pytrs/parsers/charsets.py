"""Bytes to text under a declared charset, with the repairs real mail needs.

Used by the header decoder (RFC 2047 words, 8-bit header bytes) and by the body decoder of
`parse_mail`. Never raises: every path ends in a decode that cannot fail, and the caller is told
when the declared charset was not the whole truth so it can record a warning.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

# Labels mail software writes that Python does not know, or that are better read as the superset
# browsers use for them (WHATWG encoding standard): senders label cp949 text "euc-kr" and so on.
_ALIASES = {
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "windows-874": "cp874",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}

# Python codecs that decode bytes to str but are no charset: a mail naming them gets the
# unknown-charset treatment instead of having backslash escapes or labels interpreted.
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape"})
_MAX_LABEL = 64
_C1_CONTROLS = re.compile("[\x80-\x9f]")


def _byte_table() -> tuple[str, ...]:
    # cp1252 leaves five bytes undefined; latin-1 gives them a character so the table is total.
    table = []
    for byte in range(256):
        try:
            table.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            table.append(chr(byte))
    return tuple(table)


_CP1252_TABLE = _byte_table()


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: read the bytes utf-8 rejected as windows-1252."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(_CP1252_TABLE[byte] for byte in bad), error.end


# Registered once under a private name; decoding utf-8 with it keeps every valid utf-8 sequence
# and turns stray 8-bit bytes into cp1252 characters, which also repairs mixed-encoding text.
_FALLBACK = "pytrs-cp1252"
codecs.register_error(_FALLBACK, _cp1252_fallback)


@lru_cache(maxsize=256)
def resolve_charset(label: str) -> str | None:
    """Return Python's codec name for a MIME charset label, or None if it names no text codec."""
    name = label.strip().strip("\"'").lower()
    if not name or len(name) > _MAX_LABEL:
        return None
    name = _ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None
    if codec in _NOT_CHARSETS:
        return None
    try:
        # Codecs such as "base64" exist but are not text encodings; only decoding reveals that
        # (and only for non-empty input).
        b"a".decode(codec)
    except UnicodeError:
        pass  # A text codec that merely rejects the probe byte, e.g. utf-16.
    except Exception:
        return None
    return codec


def decode_lenient(data: bytes) -> str:
    """Decode bytes of unknown charset: utf-8 where valid, windows-1252 for the rest."""
    return data.decode("utf-8", _FALLBACK)


def decode_bytes(data: bytes, label: str | None) -> tuple[str, str | None]:
    """Decode `data` declared as charset `label`; return the text and a warning or None.

    A missing label means us-ascii (RFC 2045). The warning is set when the text was not what
    the label claimed: unknown charset, 8-bit data under us-ascii, windows-1252 bytes under
    iso-8859-1, or bytes invalid in the declared charset.
    """
    if data.isascii():
        return data.decode("ascii"), None
    codec = resolve_charset(label) if label else "ascii"
    if codec is None:
        shown = str(label)[:_MAX_LABEL]
        return decode_lenient(data), f"unknown charset {shown!r}, read as utf-8/cp1252"
    if codec == "ascii":
        return _decode_utf8_first(data, f"8-bit text labelled {label or 'us-ascii'!r}")
    if codec == "iso8859-1":
        text = data.decode("latin-1")
        if _C1_CONTROLS.search(text) is None:
            return text, None
        # C1 bytes never occur in real latin-1 text: they are windows-1252 punctuation or part
        # of utf-8 sequences pasted into the latin-1 text; the lenient decode reads both right.
        return decode_lenient(data), f"8-bit C1 bytes in text labelled {label!r}"
    try:
        return data.decode(codec), None
    except (UnicodeError, LookupError, ValueError):
        pass
    if codec == "utf-8":
        return decode_lenient(data), "invalid utf-8 bytes read as cp1252"
    return _decode_utf8_first(data, f"text invalid in charset {label!r}")


def _decode_utf8_first(data: bytes, why: str) -> tuple[str, str]:
    try:
        return data.decode("utf-8"), f"{why}, read as utf-8"
    except UnicodeDecodeError:
        return decode_lenient(data), f"{why}, read as cp1252"
