"""Bounded text scans shared by the classifiers (`bounces`, `bouncetext`, `autoreply`).

Classification runs on every mail after `parse_mail`, on text an attacker chooses, so every
scan here is capped (the first `MAX_SCAN` characters) and every pattern is linear: fixed-width
or bounded quantifiers only, never one quantifier inside another, so Python's backtracking
engine does at most a constant amount of work per character.
"""

from __future__ import annotations

import re
import unicodedata

from pytrs.parsers.charsets import decode_lenient
from pytrs.parsers.fields import bracketed_ids
from pytrs.parsers.model import Attachment, ParsedMail

MAX_SCAN = 64 * 1024  # characters (or bytes) of a body or attachment that are ever looked at
MAX_DIAGNOSTIC = 500  # `Bounce.diagnostic` is one line of at most this many characters

Fields = dict[str, list[str]]

# A loose addr-spec: bounded local part (RFC 5321 allows 64) and domain (255), so a long run of
# address characters costs a bounded amount of backtracking per position.
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w.-]{1,255}")
# An RFC 3463 enhanced status code of a failure class (2.x.x never reports one), not part of an
# IP address or version number.
_ENHANCED = re.compile(r"(?<![\w.])([45])\.(\d{1,3})\.(\d{1,3})(?![\w.])")
# A basic SMTP reply code of a failure class, as servers write it: "550 ", "550-", "554:".
_SMTP_CODE = re.compile(r"(?<![\w.#])([45][0-5]\d)(?=[\s:-]|$)", re.MULTILINE)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_MESSAGE_ID_LINE = re.compile(r"[ \t]{0,8}message-id[ \t]{0,8}:", re.IGNORECASE)


def fields_of(mail: ParsedMail) -> Fields:
    """Return the mail's header values by lower-cased name, each list in message order."""
    fields: Fields = {}
    for name, value in mail.headers:
        fields.setdefault(name.lower(), []).append(value)
    return fields


def first(fields: Fields, name: str) -> str:
    """Return the first value of header `name` (lower-case), stripped, or ""."""
    values = fields.get(name)
    return values[0].strip() if values else ""


def decoded(data: bytes) -> str:
    """Return the first `MAX_SCAN` bytes of an attachment as text, whatever its charset."""
    return decode_lenient(data[:MAX_SCAN]).replace("\r\n", "\n")


def addresses_in(text: str, limit: int = 20) -> list[str]:
    """Return up to `limit` lower-cased addr-specs found in `text`, in order."""
    found = []
    for match in _ADDRESS.finditer(text):
        local, _at, domain = match.group().lower().partition("@")
        local, domain = local.lstrip("."), domain.strip(".-")
        if local and domain:
            found.append(f"{local}@{domain}")
            if len(found) >= limit:
                break
    return found


def status_in(text: str) -> str:
    """Return the first failure status in `text` as an enhanced code, or ""."""
    return find_status(text)[0]


def find_status(text: str) -> tuple[str, int]:
    """Return the first failure status in `text` and where it was written ("", -1 if none).

    An enhanced code ("5.1.1", "#5.1.1", "550-5.1.1") wins; a bare SMTP reply code stands for
    its class only ("550" → "5.0.0", "451" → "4.0.0"), as RFC 3463 suggests for unknown detail.
    """
    enhanced = _ENHANCED.search(text)
    if enhanced:
        return enhanced.group(), enhanced.start()
    code = _SMTP_CODE.search(text)
    return (f"{code.group(1)[0]}.0.0", code.start()) if code else ("", -1)


def ascii_lower(text: str) -> str:
    """Return `text` with A-Z lower-cased and nothing else changed.

    Unlike `str.lower()` this keeps every character where it was (lower-casing "İ" yields two
    characters), so a position found in the result is valid in the original text.
    """
    return text.translate(_ASCII_LOWER)


def line_at(text: str, at: int) -> str:
    """Return the line of `text` that holds position `at`, stripped ("" when `at` < 0)."""
    if at < 0:
        return ""
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start : end if end >= 0 else len(text)].strip()


def one_line(text: str) -> str:
    """Return `text` with its whitespace collapsed, cut to `MAX_DIAGNOSTIC` characters."""
    return " ".join(text[: MAX_DIAGNOSTIC * 4].split())[:MAX_DIAGNOSTIC]


def header_block_message_id(text: str) -> str:
    """Return the Message-ID of the header block that starts `text`, or "".

    Read line by line rather than with the `email` parser: the header blocks returned inside
    bounces are often mangled (continuation lines without indentation, as in Znuny's Postfix
    sample), and a broken line must not hide the Message-ID that follows it.
    """
    lines = text[:MAX_SCAN].split("\n")
    for index, line in enumerate(lines):
        if not line.strip():
            break
        if _MESSAGE_ID_LINE.match(line):
            return _id_at(lines, index)
    return ""


def quoted_message_id(text: str) -> str:
    """Return the first Message-ID quoted on a line of its own in `text` (a body), or ""."""
    lines = text[:MAX_SCAN].split("\n")
    for index, line in enumerate(lines):
        if _MESSAGE_ID_LINE.match(line):
            found = _id_at(lines, index)
            if found:
                return found
    return ""


def _id_at(lines: list[str], index: int) -> str:
    # The id may sit on the folded continuation line ("Message-ID:\n <id@host>").
    value = lines[index].partition(":")[2]
    following = lines[index + 1 : index + 3]
    value += " ".join(line for line in following if line[:1] in (" ", "\t"))
    ids = bracketed_ids(value[:2048])
    return ids[0] if ids else ""


def normalised(text: str) -> str:
    """Return `text` case-folded with whitespace collapsed and "word :" written "word:".

    Subjects are compared in this form: French puts a (often non-breaking) space before the
    colon, East Asian clients write a full-width colon, and case folding maps "ß" to "ss".
    """
    text = unicodedata.normalize("NFC", text).casefold().replace("\uff1a", ":")
    return " ".join(text.split()).replace(" :", ":")


_REPORT_TYPE = re.compile(r"report-type\s{0,8}=\s{0,8}\"?([\w-]{1,40})", re.IGNORECASE)
_FIELD = re.compile(r"([\w-]{1,64})[ \t]{0,8}:(.*)")


def report_type(fields: Fields) -> str:
    """The lower-cased report-type of a top-level `multipart/report`, else ""."""
    value = first(fields, "content-type")[:4096]
    if not value.lower().startswith("multipart/report"):
        return ""
    match = _REPORT_TYPE.search(value)
    return match.group(1).lower() if match else ""


def first_attachment(mail: ParsedMail, types: tuple[str, ...]) -> Attachment | None:
    """The first attachment whose MIME type is one of `types` (lower-case), or None."""
    for attachment in mail.attachments:
        if attachment.content_type.split(";", 1)[0].strip().lower() in types:
            return attachment
    return None


def field_blocks(text: str) -> list[dict[str, str]]:
    """The blocks of `Name: value` lines of `text` (a delivery-status or feedback-report part,
    a header block), split at blank lines: names lower-cased, folded lines joined, the first
    occurrence of a name in a block kept."""
    blocks: list[dict[str, str]] = []
    # Pieces are joined at the end: appending to a growing string per continuation line would
    # cost quadratic time on a report made of one endlessly folded field.
    current: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text[:MAX_SCAN].split("\n"):
        if not line.strip():
            if current:
                blocks.append(_joined(current))
            current, last = {}, None
        elif line[:1] in (" ", "\t"):
            if last is not None:
                last.append(line.strip())
        else:
            match = _FIELD.match(line)
            if match:
                name = match.group(1).lower()
                last = [match.group(2).strip()] if name not in current else None
                if last is not None:
                    current[name] = last
    if current:
        blocks.append(_joined(current))
    return blocks


def _joined(block: dict[str, list[str]]) -> dict[str, str]:
    return {name: " ".join(pieces) for name, pieces in block.items()}
