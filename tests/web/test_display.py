"""Ages and escalations in words (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pytrs.web.agents.display import age, escalation, span

NOW = datetime(2026, 12, 6, 12, 0, 0)


def test_span_and_age() -> None:
    assert span(0) == "now" and span(59) == "now" and span(-5) == "now"
    assert span(3600 * 27 + 60 * 5) == "1 d 3 h" and span(3600 * 2 + 60 * 5) == "2 h 5 min"
    assert span(90061, 1) == "1 d"
    assert age(NOW - timedelta(minutes=40), NOW) == "40 min"


def test_escalation() -> None:
    epoch = int(NOW.replace(tzinfo=UTC).timestamp())
    assert escalation(0, NOW) == ("", False)
    assert escalation(epoch + 3600 * 5 + 120, NOW) == ("in 5 h", False)
    assert escalation(epoch - 3600 * 30, NOW) == ("1 d overdue", True)
