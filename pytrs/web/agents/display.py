"""How the agents' lists show times: a ticket's age and its escalation, in words.

Place in the flow: the queue view, the search results and the zoom call these while building
their pages (pure, given "now" or a ticket's clocks from `tickets.escalation_reads`, which
count in working time).
"""

from __future__ import annotations

from datetime import datetime

from pytrs.tickets.escalation_reads import Clock

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


def escalation(clock: Clock | None) -> tuple[str, bool]:
    """(text, escalated) of a ticket's earliest escalation clock in working time; None means
    no deadline ("", False)."""
    if clock is None:
        return "", False
    left = clock.seconds_left
    # One unit: the column is narrow and the hour is what counts.
    if clock.escalated:
        return (f"{span(-left, 1)} overdue" if left <= -60 else "overdue"), True
    return (f"in {span(left, 1)}" if left >= 60 else "due now"), False


def clock_text(clock: Clock) -> str:
    """A clock's working time left in two units, for the zoom: "2 h 5 min left",
    "1 d 3 h overdue"."""
    if clock.escalated:
        return f"{span(-clock.seconds_left)} overdue" if clock.seconds_left <= -60 else "overdue"
    return f"{span(clock.seconds_left)} left"
