"""Writing the bytes of a text (and HTML) mail directly, for the postmaster's hot path (pure).

`message.Composer` answers every new ticket with an auto-response inside the postmaster's
transaction; building those mails with `EmailMessage` and its header registry cost about a
millisecond each, more than routing the mail that caused them. This module writes the same
RFC 5322 / MIME structure straight from strings: header values RFC 2047-encoded when they are
not ASCII (address headers keep their addr-specs readable, only display names are encoded),
lines folded under 78 characters, the text part 7-bit or quoted-printable, an HTML alternative
quoted-printable. Mail with attachments still goes through `EmailMessage`.
"""

from __future__ import annotations

import base64
import functools
import secrets
from collections.abc import Sequence
from email.header import Header
from email.quoprimime import body_encode
from email.utils import formataddr, getaddresses

ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})
# Headers whose value is an identifier list or a structured token: never encoded, folded
# only between words.
_STRUCTURED = frozenset({"message-id", "in-reply-to", "references", "date", "content-language"})
_LINE = 78
_CRLF = "\r\n"


def render(headers: Sequence[tuple[str, str]], text: str, html: str | None = None) -> bytes:
    """The whole message: `headers` (name, value — empty values skipped) and the body."""
    lines = [_header(name, value) for name, value in headers if value]
    lines.append("MIME-Version: 1.0")
    if html is None:
        lines.extend(_text_part_headers(text))
        body = _text_body(text)
    else:
        boundary = f"=_pytrs_{secrets.token_hex(12)}"
        lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"')
        parts = [
            "\r\n".join(_text_part_headers(text)) + "\r\n\r\n" + _text_body(text),
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + _qp(html),
        ]
        body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return (_CRLF.join(lines) + _CRLF + _CRLF + body).encode("ascii")


@functools.lru_cache(maxsize=4096)
def address_list(value: str) -> tuple[tuple[str, str], ...]:
    """The (name, address) pairs of one address header value, as `getaddresses` reads them.

    Remembered: the standard library's address parser is the slowest step of composing a
    mail, and what pytrs sends repeats the same few addresses (a queue's system address, the
    agents notified) in every mail it sends.
    """
    return tuple(getaddresses([value]))


def _header(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered in ADDRESS_HEADERS:
        value = ", ".join(_address(n, a) for n, a in address_list(value) if a)
    elif lowered not in _STRUCTURED and not value.isascii():
        return _encoded(name, value)
    return _fold(f"{name}: {value}")


_WORD_START, _WORD_END = "=?utf-8?b?", "?="


def _encoded(name: str, value: str) -> str:
    """``name: value`` as RFC 2047 base64 words of whole characters, one per line under 78.

    `email.header.Header` chose between Q and B by measuring both, most of an auto reply's
    header cost; decoders read either, and white space between adjacent words is dropped.
    """
    first = min(_LINE - len(name) - 2, 75)  # after "Name: "; 75 is RFC 2047's word limit
    if first < len(_WORD_START) + len(_WORD_END) + 8:  # a name too long for one word
        return f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep=_CRLF)
    limits = iter([first] + [min(_LINE - 1, 75)] * len(value))
    words: list[str] = []
    chunk: list[bytes] = []
    size, most = 0, _payload_bytes(next(limits))
    for char in value:
        encoded = char.encode("utf-8")
        if size + len(encoded) > most:
            words.append(_word(b"".join(chunk)))
            chunk, size, most = [], 0, _payload_bytes(next(limits))
        chunk.append(encoded)
        size += len(encoded)
    words.append(_word(b"".join(chunk)))
    return f"{name}: " + (_CRLF + " ").join(words)


def _payload_bytes(line_room: int) -> int:
    """The most UTF-8 bytes whose base64 word fits in `line_room` characters."""
    return (line_room - len(_WORD_START) - len(_WORD_END)) // 4 * 3


def _word(payload: bytes) -> str:
    return _WORD_START + base64.b64encode(payload).decode("ascii") + _WORD_END


def _address(name: str, address: str) -> str:
    if not name:
        return address
    return formataddr((name, address), charset="utf-8")


def _fold(line: str) -> str:
    """Fold at spaces so no line passes 78 characters where a space allows it."""
    if len(line) <= _LINE:
        return line
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > _LINE:
            out.append(current)
            current = " " + word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return _CRLF.join(out)


def _text_part_headers(text: str) -> list[str]:
    encoding = "7bit" if _seven_bit(text) else "quoted-printable"
    return ["Content-Type: text/plain; charset=utf-8", f"Content-Transfer-Encoding: {encoding}"]


def _seven_bit(text: str) -> bool:
    return text.isascii() and all(len(line) <= 998 for line in text.splitlines())


def _text_body(text: str) -> str:
    text = text if text.endswith("\n") else text + "\n"
    if _seven_bit(text):
        return _CRLF.join(text.splitlines()) + _CRLF
    return _qp(text)


def _qp(text: str) -> str:
    encoded = body_encode(text.encode("utf-8").decode("latin-1"), eol=_CRLF)
    return encoded if encoded.endswith(_CRLF) else encoded + _CRLF
