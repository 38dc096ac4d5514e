"""How the agents' lists show times: a ticket's age and its escalation, in words.

Place in the flow: the queue view and the search results call these while building rows for
their templates (pure, given "now").
"""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"))


def span(seconds: float, units: int = 2) -> str:
    """A duration in its `units` largest units: "3 d 4 h", "2 h 5 min", "40 min", "now"."""
    seconds = int(max(seconds, 0))
    parts = []
    for size, unit in _UNITS:
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        if len(parts) == units:
            break
    return " ".join(parts) or "now"


def age(created: datetime, now: datetime) -> str:
    """How long ago a ticket was created (naive UTC, as stored)."""
    return span((now - created).total_seconds())


def escalation(epoch: int, now: datetime) -> tuple[str, bool]:
    """(text, overdue) of an escalation time in epoch seconds; 0 means none ("", False)."""
    if not epoch:
        return "", False
    left = epoch - now.replace(tzinfo=UTC).timestamp()
    # One unit: the column is narrow and the hour is what counts.
    return (f"in {span(left, 1)}", False) if left > 0 else (f"{span(-left, 1)} overdue", True)
