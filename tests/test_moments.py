"""Pending times as people type them and deadlines as they read them (`vocabulary.moments`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pytrs.vocabulary.moments import BadMoment, local, pending_time, rfc3339

# Monday 2027-01-04 08:00 UTC = 09:00 in Berlin (CET).
NOW = int(datetime(2027, 1, 4, 8, 0, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("text", "later"),
    [("+30m", 1800), ("+2h", 7200), ("+3d", 3 * 86400), (" +1 h ", 3600), ("+90m", 5400)],
)
def test_relative_pending_times(text: str, later: int) -> None:
    assert pending_time(text, NOW, "Europe/Berlin") == NOW + later


def test_absolute_pending_time_is_local() -> None:
    assert pending_time("2027-01-04 11:30", NOW, "Europe/Berlin") == NOW + 2 * 3600 + 1800
    assert pending_time("2027-01-04 11:30", NOW, "UTC") == NOW + 3 * 3600 + 1800
    # Summer time: Berlin is two hours ahead.
    summer = pending_time("2027-07-01 12:00", NOW, "Europe/Berlin")
    assert summer == int(datetime(2027, 7, 1, 10, 0, tzinfo=UTC).timestamp())
    # The web form's datetime-local value reads the same.
    assert pending_time("2027-01-04T11:30", NOW, "Europe/Berlin") == NOW + 9000


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2027-01-04 09:00", "is in the past"),  # exactly now, in Berlin
        ("2026-12-31 23:59", "is in the past"),
        ("+0h", "is not in the future"),
        ("tomorrow", 'give "+30m", "+2h", "+3d" or "YYYY-MM-DD HH:MM"'),
        ("+2w", "local time in Europe/Berlin"),
        ("-2h", "give"),
        ("2027-02-30 10:00", "give"),
        ("", "give"),
    ],
)
def test_refused_pending_times(text: str, says: str) -> None:
    with pytest.raises(BadMoment, match=None) as caught:
        pending_time(text, NOW, "Europe/Berlin")
    message = str(caught.value)
    assert says in message and "\n" not in message


def test_local_and_rfc3339() -> None:
    assert local(NOW, "Europe/Berlin") == "2027-01-04 09:00 CET"
    assert local(NOW, "UTC") == "2027-01-04 08:00 UTC"
    assert local(0, "UTC") == "-"
    assert rfc3339(NOW) == "2027-01-04T08:00:00Z" and rfc3339(0) is None
