"""Header field decoding: a raw compat32 header value becomes one clean line of text.

`parse_mail` runs every top-level header through `decode_header_value`; the MIME walk uses it
for filenames and Content-IDs. It bounds the raw size, unfolds, reads raw 8-bit bytes (utf-8,
else the mail's own charset, else a guess or cp1252), decodes RFC 2047 encoded words leniently
(per word, so one broken word cannot spoil the field) and strips the newlines that article storage
must not see (REFERENCE §12). It never raises.
"""

from __future__ import annotations

import binascii
import re
from email import policy
from email.parser import BytesHeaderParser

from pytrs.parsers.charsets import decode_bytes, decode_unlabelled
from pytrs.vocabulary.parse_limits import DEFAULT_LIMITS

# The decoded text of one field is stored at most this long, whatever the raw limit allowed.
MAX_HEADER_CHARS = 64 * 1024

# Unfolding only removes the line breaks (RFC 5322 2.2.3); NUL is dropped as no store keeps it.
_BREAKS = re.compile("[\r\n\x00]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*)\?=")


def decode_header_value(
    raw: str,
    warnings: list[str],
    name: str = "",
    *,
    max_bytes: int = DEFAULT_LIMITS.max_header_bytes,
    charset: str | None = None,
) -> str:
    """Return the unfolded, decoded, stripped text of one raw header value.

    `max_bytes` bounds the raw value read (longer ones are cut, with a warning); `charset` is the
    codec raw 8-bit bytes are read in when they are not utf-8 (the mail's body charset).
    """
    if len(raw) <= max_bytes and _plain(raw):
        return raw.strip()
    value = raw
    if len(value) > max_bytes:
        # 8-bit bytes are one surrogate escape each, so characters count raw bytes here.
        value = value[:max_bytes]
        warnings.append(f"header {name or '?'} longer than {max_bytes} bytes, cut")
    if "\x00" in value:
        warnings.append(f"NUL characters removed from header {name or '?'}")
    value = _BREAKS.sub("", value)
    if not value.isascii():
        value = _decode_8bit(value, warnings, name, charset)
    if "=?" in value:
        value = decode_encoded_words(value, warnings)
        # Decoded words can carry their own newlines (=0A); headers stay one line.
        value = _BREAKS.sub("", value)
    return value.strip()


def _plain(raw: str) -> bool:
    """Whether a value needs no more than stripping: ASCII, one line, no NUL, no encoded word.

    Substring tests rather than one regular expression: most values are short, and `re` tries
    its pattern at every character where `in` scans in C (4x faster on the bench corpus).
    """
    return (
        raw.isascii()
        and "\n" not in raw
        and "\r" not in raw
        and "\x00" not in raw
        and "=?" not in raw
    )


def raw_header_text(raw: str, max_bytes: int = DEFAULT_LIMITS.max_header_bytes) -> str:
    """Return a raw header value unfolded and 8-bit-decoded, encoded words left as they are."""
    value = _BREAKS.sub("", raw[:max_bytes])
    if not value.isascii():
        value = _decode_8bit(value, [], "", None)
    return value.strip()


def _decode_8bit(value: str, warnings: list[str], name: str, charset: str | None) -> str:
    # The bytes parser keeps 8-bit header bytes as surrogate escapes; turn them back into bytes.
    # Characters that are no escapes (a str handed in directly) go through as utf-8.
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    where = f"8-bit header {name or '?'}"
    if charset is not None:
        text, problem = decode_bytes(data, charset)
        if problem is None:
            warnings.append(f"{where} read as {charset}, the charset of the body")
            return text
    text, how = decode_unlabelled(data)
    warnings.append(f"{where} {how}")
    return text


def decode_encoded_words(value: str, warnings: list[str]) -> str:
    """Decode RFC 2047 encoded words in `value`, leaving undecodable words as written.

    Adjacent words in one charset are joined as bytes before decoding, because senders split
    multi-byte characters across words (and across Q and B words); whitespace between encoded
    words is dropped as RFC 2047 section 6.2 requires.
    """
    out: list[str] = []
    pending = bytearray()
    pending_charset = ""
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        if gap and not (pending_charset and gap.isspace()):
            if pending_charset:
                out.append(_decode_run(pending, pending_charset, warnings))
                pending, pending_charset = bytearray(), ""
            out.append(gap)
        pos = match.end()
        charset, encoding, text = match.groups()
        charset = charset.split("*", 1)[0].lower()  # RFC 2231 allows a "*lang" suffix.
        data = _decode_word(encoding, text)
        if pending_charset and (data is None or charset != pending_charset):
            out.append(_decode_run(pending, pending_charset, warnings))
            pending, pending_charset = bytearray(), ""
        if data is None:
            warnings.append("broken encoded word kept as written")
            out.append(match.group(0))
            continue
        pending += data
        pending_charset = charset
    if pending_charset:
        out.append(_decode_run(pending, pending_charset, warnings))
    out.append(value[pos:])
    return "".join(out)


def _decode_word(encoding: str, text: str) -> bytes | None:
    if encoding in "qQ":
        return binascii.a2b_qp(text.encode("utf-8", "surrogatepass"), header=True)
    compact = "".join(text.split()).rstrip("=")
    if len(compact) % 4 == 1:
        compact = compact[:-1]  # A lone trailing sextet carries no whole byte.
    try:
        # Strict: a word with characters outside base64 is kept as written, not half-decoded.
        return binascii.a2b_base64(compact + "=" * (-len(compact) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _decode_run(data: bytearray, charset: str, warnings: list[str]) -> str:
    text, warning = decode_bytes(bytes(data), charset)
    if warning:
        warnings.append(f"header word: {warning}")
    return text


def head_fields(head: bytes, names: tuple[str, ...] = ("from", "subject")) -> dict[str, str]:
    """The decoded values of a few fields (lower-case `names`) read from the start of a raw
    mail, for listings that show a mail without parsing it whole; absent fields are left out.
    Never raises: compat32 accepts any header, and the decoding is ours."""
    message = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
    warnings: list[str] = []
    found = {}
    for name in names:
        value = message.get(name)
        if value is not None:
            found[name] = decode_header_value(str(value), warnings, name)
    return found
