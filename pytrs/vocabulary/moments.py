"""Moments people type and read: a pending time ("+2h", "+3d", "+30m", "2027-01-04 09:00") and
a deadline shown in local time.

Both are in one time zone, `[scheduler] timezone`, so that what `tickets set --pending` takes,
the web form takes and `tickets show` prints read alike. Pure: epoch seconds in and out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_RELATIVE = re.compile(r"\+(\d{1,6})\s*([mhd])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")


class BadMoment(ValueError):
    """A pending time that cannot be used; the message is one line for people."""


def pending_time(text: str, now: int, timezone: str) -> int:
    """The epoch seconds `text` means at `now`: "+N" minutes, hours or days from now, or a
    local "YYYY-MM-DD HH:MM" in `timezone`. Raises BadMoment for another format or a time
    that is not in the future."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount = int(relative.group(1))
        if not amount:
            raise BadMoment(f"pending time {text!r} is not in the future")
        return now + amount * _UNIT_SECONDS[relative.group(2)]
    local = _parsed(text)
    if local is None:
        raise BadMoment(
            f'pending time {text!r}: give "+30m", "+2h", "+3d" or "YYYY-MM-DD HH:MM" '
            f"(local time in {timezone})"
        )
    moment = int(local.replace(tzinfo=ZoneInfo(timezone)).timestamp())
    if moment <= now:
        raise BadMoment(f"pending time {text!r} ({timezone}) is in the past")
    return moment


def _parsed(text: str) -> datetime | None:
    for layout in _FORMATS:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    return None


def local(epoch: int, timezone: str) -> str:
    """`epoch` as a local time in `timezone` for people: "2027-01-04 09:00 CET"; "-" for 0."""
    if not epoch:
        return "-"
    moment = datetime.fromtimestamp(epoch, UTC).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def rfc3339(epoch: int) -> str | None:
    """`epoch` as RFC 3339 UTC ("2027-01-04T08:00:00Z"); None for 0."""
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
