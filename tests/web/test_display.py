"""Ages and escalations in words (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pytrs.tickets.escalation_reads import Clock
from pytrs.web.agents.display import age, clock_text, escalation, span

NOW = datetime(2026, 12, 6, 12, 0, 0)


def test_span_and_age() -> None:
    assert span(0) == "now" and span(59) == "now" and span(-5) == "now"
    assert span(3600 * 27 + 60 * 5) == "1 d 3 h" and span(3600 * 2 + 60 * 5) == "2 h 5 min"
    assert span(90061, 1) == "1 d"
    assert age(NOW - timedelta(minutes=40), NOW) == "40 min"


def clock(seconds_left: int, escalated: bool) -> Clock:
    return Clock("response", 1_800_000_000, seconds_left, escalated)


def test_escalation() -> None:
    assert escalation(None) == ("", False)
    assert escalation(clock(3600 * 5 + 120, False)) == ("in 5 h", False)
    assert escalation(clock(-3600 * 30, True)) == ("1 d overdue", True)
    assert escalation(clock(30, False)) == ("due now", False)
    # Past the deadline outside working hours: no working time has passed since, yet it is.
    assert escalation(clock(0, True)) == ("overdue", True)
    assert clock_text(clock(3600 * 2 + 300, False)) == "2 h 5 min left"
    assert clock_text(clock(-90061, True)) == "1 d 1 h overdue"
    assert clock_text(clock(0, True)) == "overdue"
