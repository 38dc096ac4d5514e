"""Days off: one-off and yearly dates, an iCalendar file, a country with its subdivision."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pytrs.calendars import CalendarError
from pytrs.calendars.holidays import DaysOff, country_days, ics_days, parse_holiday

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//pytrs tests//EN
BEGIN:VEVENT
UID:one-day@test
DTSTAMP:20260101T000000Z
SUMMARY:Company outing
DTSTART;VALUE=DATE:20260612
END:VEVENT
BEGIN:VEVENT
UID:multi-day@test
DTSTAMP:20260101T000000Z
SUMMARY:Between the years
DTSTART;VALUE=DATE:20261228
DTEND;VALUE=DATE:20261231
END:VEVENT
BEGIN:VEVENT
UID:yearly@test
DTSTAMP:20260101T000000Z
SUMMARY:Founders' day
DTSTART;VALUE=DATE:20200915
RRULE:FREQ=YEARLY
EXDATE;VALUE=DATE:20270915
END:VEVENT
BEGIN:VEVENT
UID:last-friday-of-july@test
DTSTAMP:20260101T000000Z
SUMMARY:Summer party
DTSTART;VALUE=DATE:20250725
RRULE:FREQ=YEARLY;BYMONTH=7;BYDAY=-1FR
END:VEVENT
BEGIN:VEVENT
UID:timed@test
DTSTAMP:20260101T000000Z
SUMMARY:A meeting is not a day off
DTSTART:20260615T100000Z
DTEND:20260615T110000Z
END:VEVENT
BEGIN:VEVENT
UID:cancelled@test
DTSTAMP:20260101T000000Z
SUMMARY:Called off
STATUS:CANCELLED
DTSTART;VALUE=DATE:20260616
END:VEVENT
END:VCALENDAR
"""


def test_parse_holiday() -> None:
    assert parse_holiday("2026-12-24") == date(2026, 12, 24)
    assert parse_holiday("12-25") == (12, 25)
    assert parse_holiday("02-29") == (2, 29)
    for bad, message in [
        ("2026-02-30", "not a real date"),
        ("02-30", "not a real day of the year"),
        ("13-01", "not a real day of the year"),
        ("24.12.", "neither YYYY-MM-DD nor MM-DD"),
        ("2026-1-6", "neither YYYY-MM-DD nor MM-DD"),
    ]:
        with pytest.raises(CalendarError, match=message):
            parse_holiday(bad)


def test_days_off_from_dates_and_yearly_dates() -> None:
    days_off = DaysOff([date(2026, 12, 24)], [(12, 25), (2, 29)])
    assert days_off(date(2026, 12, 24))
    assert not days_off(date(2027, 12, 24))
    assert days_off(date(2026, 12, 25)) and days_off(date(2031, 12, 25))
    assert days_off(date(2028, 2, 29)) and not days_off(date(2027, 3, 1))
    assert not DaysOff()


def test_country_and_subdivision() -> None:
    bavaria = DaysOff(country="DE", subdivision="BY")
    assert bavaria(date(2026, 1, 6))  # Epiphany is off in Bavaria...
    assert not DaysOff(country="DE", subdivision="BE")(date(2026, 1, 6))  # ...not in Berlin
    assert not DaysOff(country="DE")(date(2026, 1, 6))  # nor nationwide
    assert bavaria(date(2026, 10, 3))  # German Unity Day, everywhere
    assert bavaria(date(2031, 12, 25))  # years are expanded as they are asked for
    assert date(2026, 5, 14) in country_days("DE", "", 2026)  # Ascension Day
    with pytest.raises(CalendarError, match="unknown holidays country 'XX'"):
        DaysOff(country="XX")
    with pytest.raises(CalendarError, match="unknown subdivision 'ZZ' of DE"):
        DaysOff(country="DE", subdivision="ZZ")


def test_ics_file_all_day_multi_day_and_yearly_events(tmp_path: Path) -> None:
    path = tmp_path / "holidays.ics"
    path.write_text(ICS, encoding="utf-8")
    days = set(ics_days(path, today=date(2026, 6, 1)))
    assert date(2026, 6, 12) in days
    # DTEND is exclusive: 28, 29 and 30 December.
    assert {date(2026, 12, 28), date(2026, 12, 29), date(2026, 12, 30)} <= days
    assert date(2026, 12, 31) not in days
    # The yearly event over the years around "today", without its EXDATE.
    assert {date(year, 9, 15) for year in (2024, 2025, 2026, 2028, 2036)} <= days
    assert date(2027, 9, 15) not in days
    assert date(2023, 9, 15) not in days and date(2037, 9, 15) not in days
    # A yearly rule that is not a fixed date: the last Friday of July.
    assert {date(2026, 7, 31), date(2027, 7, 30)} <= days
    # Timed and cancelled events are not days off.
    assert date(2026, 6, 15) not in days and date(2026, 6, 16) not in days


def test_ics_file_problems(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match=r"cannot read .*missing\.ics"):
        ics_days(tmp_path / "missing.ics")
    garbage = tmp_path / "garbage.ics"
    garbage.write_text("this is not a calendar\n", encoding="utf-8")
    with pytest.raises(CalendarError, match="is not an iCalendar file"):
        ics_days(garbage)
