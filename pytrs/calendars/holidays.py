"""Days off of a business calendar: fixed dates, yearly dates, an iCalendar file, a country.

Place in the flow: read while a ``[[calendars]]`` entry becomes a definition (the iCalendar file
is expanded to dates there, so the stored definition does not depend on a file), and asked by
the working-time arithmetic whether a local date is off. Country holidays come from the
``holidays`` package, expanded lazily one year at a time and cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pytrs.calendars.working_time import CalendarError

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_YEARLY = re.compile(r"(\d{2})-(\d{2})")
# The years a recurring iCalendar event is expanded over, around the year it is read in.
ICS_YEARS_BEFORE = 2
ICS_YEARS_AFTER = 10


def parse_holiday(text: str) -> date | tuple[int, int]:
    """A one-off "YYYY-MM-DD" (a date) or a yearly "MM-DD" ((month, day)).

    Raises CalendarError for anything else, including dates that do not exist ("02-30").
    """
    if match := _DATE.fullmatch(text):
        try:
            return date(*(int(part) for part in match.groups()))
        except ValueError:
            raise CalendarError(f"{text!r} is not a real date") from None
    if match := _YEARLY.fullmatch(text):
        month, day = int(match[1]), int(match[2])
        try:
            date(2000, month, day)  # a leap year, so that 02-29 is allowed
        except ValueError:
            raise CalendarError(f"{text!r} is not a real day of the year") from None
        return month, day
    raise CalendarError(f"{text!r} is neither YYYY-MM-DD nor MM-DD")


class DaysOff:
    """Whether a local date is a day off; built from parsed holidays and a country.

    Immutable from the outside; the per-year country sets are a cache.
    """

    __slots__ = ("_country_years", "country", "dates", "subdivision", "yearly")

    def __init__(
        self,
        dates: Iterable[date] = (),
        yearly: Iterable[tuple[int, int]] = (),
        country: str = "",
        subdivision: str = "",
    ) -> None:
        self.dates = frozenset(dates)
        self.yearly = frozenset(yearly)
        self.country = country
        self.subdivision = subdivision
        self._country_years: dict[int, frozenset[date]] = {}
        if country:
            check_country(country, subdivision)  # fail now, not in the middle of a scan

    def __call__(self, day: date) -> bool:
        if day in self.dates or (day.month, day.day) in self.yearly:
            return True
        return bool(self.country) and day in self._country_year(day.year)

    def __bool__(self) -> bool:
        return bool(self.dates or self.yearly or self.country)

    def _country_year(self, year: int) -> frozenset[date]:
        found = self._country_years.get(year)
        if found is None:
            found = self._country_years[year] = country_days(self.country, self.subdivision, year)
        return found


def country_days(country: str, subdivision: str, year: int) -> frozenset[date]:
    """The public holidays of a country (and subdivision) in one year.

    Raises CalendarError when the ``holidays`` package knows neither.
    """
    # A large package: imported only by calendars that name a country.
    import holidays

    check_country(country, subdivision)
    found = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return frozenset(found.keys())


def check_country(country: str, subdivision: str) -> None:
    """Raise CalendarError unless the ``holidays`` package knows the country and subdivision."""
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise CalendarError(
            f"unknown holidays country {country!r} (an ISO 3166 code such as DE or US)"
        )
    if subdivision and subdivision not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        raise CalendarError(f"unknown subdivision {subdivision!r} of {country} (known: {known})")


def ics_days(path: Path, today: date | None = None) -> list[date]:
    """The days off an iCalendar file lists: its all-day events, each day of a multi-day one,
    and yearly (or any other) recurrences expanded over a range of years around ``today``.

    Timed events are not days off and are skipped. Raises CalendarError when the file cannot
    be read or parsed.
    """
    # Imported only by calendars that name a file; dateutil comes with icalendar.
    import icalendar
    from dateutil.rrule import rrulestr

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalendarError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        calendar = icalendar.Calendar.from_ical(raw)
    except ValueError as exc:
        raise CalendarError(f"{path} is not an iCalendar file: {_first_line(exc)}") from None
    year = (today or date.today()).year
    first, last = date(year - ICS_YEARS_BEFORE, 1, 1), date(year + ICS_YEARS_AFTER, 12, 31)
    days: set[date] = set()
    try:
        for event in calendar.walk("VEVENT"):
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            start = event.decoded("DTSTART", None)
            if not isinstance(start, date) or isinstance(start, datetime):
                continue  # a timed event (or none): not a day off
            length = _event_days(event, start)
            starts = [start]
            if "RRULE" in event:
                rule = rrulestr(_text(event["RRULE"].to_ical()), dtstart=_midnight(start))
                starts = [
                    moment.date()
                    for moment in rule.between(_midnight(first), _midnight(last), inc=True)
                ]
                starts = [day for day in starts if day not in _excluded(event)]
            for begin in starts:
                days.update(begin + timedelta(days=n) for n in range(length))
    except (ValueError, TypeError, KeyError) as exc:
        raise CalendarError(f"{path}: cannot read an event: {_first_line(exc)}") from None
    return sorted(days)


def _event_days(event: Any, start: date) -> int:
    """How many days an all-day event covers (DTEND is exclusive; no DTEND means one)."""
    end = event.decoded("DTEND", None)
    if isinstance(end, date) and not isinstance(end, datetime):
        return max(1, (end - start).days)
    duration = event.decoded("DURATION", None)
    if isinstance(duration, timedelta):
        return max(1, duration.days)
    return 1


def _excluded(event: Any) -> set[date]:
    """The EXDATE dates of an event (one property or a list of them)."""
    found: set[date] = set()
    values = event.get("EXDATE", [])
    for prop in values if isinstance(values, list) else [values]:
        for item in getattr(prop, "dts", []):
            moment = item.dt
            found.add(moment.date() if isinstance(moment, datetime) else moment)
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
