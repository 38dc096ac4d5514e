"""Identity fields of a mail: Message-ID, In-Reply-To, References, Date.

`parse_mail` fills these from decoded header text; routing uses them for follow-up detection
(article lookups by `message_id_md5`). Every function here tolerates garbage and reports
problems as warnings, never as exceptions.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DERIVED_ID_DOMAIN = "pytrs.invalid"
_BRACKETED_ID = re.compile(r"<([^<>]*)>")
_ISO_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def bracketed_ids(value: str) -> list[str]:
    """Return every non-empty "<...>" id in `value`, whitespace inside an id removed."""
    ids = []
    for inner in _BRACKETED_ID.findall(value):
        # Broken folding sometimes lands inside an id; the id itself never contains spaces.
        compact = "".join(inner.split())
        if compact:
            ids.append(f"<{compact}>")
    return ids


def message_id(value: str, raw: bytes, warnings: list[str]) -> str:
    """Return the "<...>" Message-ID, repairing a bare id or deriving one from the raw bytes.

    The derived id hashes the raw mail, so the same bytes always get the same id and a
    re-delivered copy is recognised as a duplicate.
    """
    ids = bracketed_ids(value)
    if ids:
        return ids[0]
    tokens = value.split()
    if tokens and tokens[0].strip("<>"):
        warnings.append("Message-ID without angle brackets")
        return f"<{tokens[0].strip('<>')}>"
    warnings.append("Message-ID missing, derived from the raw bytes")
    return derived_message_id(raw)


def derived_message_id(raw: bytes) -> str:
    """Return the stand-in Message-ID of a mail without one: a hash prefix of its raw bytes."""
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@{DERIVED_ID_DOMAIN}>"


def references(references_values: tuple[str, ...], in_reply_to: tuple[str, ...]) -> tuple[str, ...]:
    """Return the ids of References then In-Reply-To, first occurrence kept, order kept."""
    seen: dict[str, None] = {}
    for value in (*references_values, *in_reply_to):
        for found in bracketed_ids(value):
            seen.setdefault(found, None)
    return tuple(seen)


def parse_date(value: str, warnings: list[str]) -> datetime | None:
    """Return the Date header as an aware UTC datetime, or None (with a warning) if unusable."""
    if not value:
        warnings.append("Date missing")
        return None
    try:
        parsed = _parse_date(value)
        if parsed.tzinfo is None:
            # RFC 5322 "-0000": the time is UTC, the sender's zone unknown.
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except Exception:  # ValueError, TypeError, OverflowError across Python patch releases.
        warnings.append("Date unparsable")
        return None


def _parse_date(value: str) -> datetime:
    try:
        return parsedate_to_datetime(value)
    except Exception:
        # Some scripts and web forms write ISO 8601 ("2026-03-03T10:00:00Z") instead.
        if not _ISO_DATE.match(value):
            raise
        return datetime.fromisoformat(value.strip())
