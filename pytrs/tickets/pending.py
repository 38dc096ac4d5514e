"""Pending times as people write them (pure): Znuny's absolute `YYYY-MM-DD HH:MM:SS` or a
relative `+N[s|m|h|d]`.

Used where a pending time arrives as text: the `X-PyTRS-State-PendingTime` control headers of
the mail path (`postmaster.changes`), and the command line. Absolute times are UTC (Znuny's
default OTRSTimeZone); a relative time counts from `now` (the mail's processing time), with a
single unit and seconds by default, as Znuny's PostMaster reads it (REFERENCE §2).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RELATIVE = re.compile(r"\s*([+-]?)\s*(\d{1,9})\s*([smhd]?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ABSOLUTE = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def parse_pending_time(text: str, now: int) -> int | None:
    """The epoch seconds `text` names, or None when it names no time."""
    found = _RELATIVE.fullmatch(text)
    if found is not None:
        sign, number, unit = found.groups()
        seconds = int(number) * _UNITS[unit.lower()]
        return now - seconds if sign == "-" else now + seconds
    for shape in _ABSOLUTE:
        try:
            at = datetime.strptime(text.strip(), shape)
        except ValueError:
            continue
        return int(at.replace(tzinfo=UTC).timestamp())
    return None
