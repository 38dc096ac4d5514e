"""How stored times are shown: the command line and the web view print the same text.

Times are stored as naive UTC (schema/tables.py); people read them to the second, JSON gets
ISO 8601 with a `Z`.
"""

from __future__ import annotations

from datetime import datetime


def when(value: datetime | None) -> str:
    """A stored (naive UTC) time for people: `2026-11-25 10:00:00`; "-" for none."""
    return value.isoformat(" ", "seconds") if value is not None else "-"


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time for JSON: `2026-11-25T10:00:00Z`."""
    return value.isoformat("T", "seconds") + "Z" if value is not None else None
