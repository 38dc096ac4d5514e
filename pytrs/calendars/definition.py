"""A ``[[calendars]]`` entry → a JSON definition → a WorkingCalendar, and its config check.

Place in the flow: provisioning turns each configured calendar into a definition (stored in the
``business_calendar`` table); the escalation policy builds WorkingCalendars from the stored
definitions. The definition is self-contained: an iCalendar file is expanded to dates here, so
a daemon reading the table never needs the file. ``calendar_problems`` reports every problem of
an entry as one "key: message" line each, for ``pytrs config check``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

from pytrs.calendars.holidays import DaysOff, check_country, ics_days, parse_holiday
from pytrs.calendars.working_time import (
    WEEKDAYS,
    CalendarError,
    Window,
    WorkingCalendar,
    zone,
)


class WeekHours(Protocol):
    """The ``hours`` table of a calendar entry: windows per weekday."""

    @property
    def mon(self) -> tuple[str, ...]: ...
    @property
    def tue(self) -> tuple[str, ...]: ...
    @property
    def wed(self) -> tuple[str, ...]: ...
    @property
    def thu(self) -> tuple[str, ...]: ...
    @property
    def fri(self) -> tuple[str, ...]: ...
    @property
    def sat(self) -> tuple[str, ...]: ...
    @property
    def sun(self) -> tuple[str, ...]: ...


class CalendarConfig(Protocol):
    """The shape of a ``[[calendars]]`` entry (pytrs.config.model.CalendarConfig); named here
    rather than imported because the configuration, a floor above, asks this module."""

    @property
    def name(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def hours(self) -> WeekHours: ...
    @property
    def holidays(self) -> tuple[str, ...]: ...
    @property
    def holidays_file(self) -> str: ...
    @property
    def holidays_country(self) -> str: ...
    @property
    def holidays_subdivision(self) -> str: ...


_WINDOW = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")


def parse_window(text: str) -> Window:
    """A window "HH:MM-HH:MM" → (start, end) seconds after midnight; the end may be "24:00".

    Raises CalendarError unless the window is well formed and starts before it ends.
    """
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise CalendarError(f"{text!r} is not HH:MM-HH:MM")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
        raise CalendarError(f"{text!r}: hours run 00-23 (or 24:00 as an end), minutes 00-59")
    start, end = start_h * 3600 + start_m * 60, end_h * 3600 + end_m * 60
    if start >= end:
        raise CalendarError(f"{text!r}: the window must start before it ends")
    return start, end


def _day_windows(texts: Any, report: Callable[[str, str], None], day: str) -> list[Window]:
    windows: list[tuple[Window, str]] = []
    for index, text in enumerate(texts):
        try:
            windows.append((parse_window(text), text))
        except CalendarError as exc:
            report(f"hours.{day}[{index}]", str(exc))
    windows.sort()
    for (first, first_text), (second, second_text) in pairwise(windows):
        if second[0] < first[1]:
            report(f"hours.{day}", f"windows {first_text!r} and {second_text!r} overlap")
    return [window for window, _ in windows]


def _holidays(
    texts: Any, report: Callable[[str, str], None]
) -> tuple[list[date], list[tuple[int, int]]]:
    dates: list[date] = []
    yearly: list[tuple[int, int]] = []
    for index, text in enumerate(texts):
        try:
            parsed = parse_holiday(text)
        except CalendarError as exc:
            report(f"holidays[{index}]", str(exc))
            continue
        if isinstance(parsed, date):
            dates.append(parsed)
        else:
            yearly.append(parsed)
    return dates, yearly


def _check_zone(name: str, report: Callable[[str, str], None]) -> None:
    try:
        zone(name)
    except CalendarError as exc:
        report("timezone", str(exc))


def _country(definition: Mapping[str, Any], report: Callable[[str, str], None]) -> bool:
    """Whether the definition's holidays country (and subdivision) can be used."""
    country = str(definition.get("holidays_country", ""))
    subdivision = str(definition.get("holidays_subdivision", ""))
    if not country:
        if subdivision:
            report("holidays_subdivision", "needs holidays_country too")
        return False
    for key, checked in (("holidays_country", ""), ("holidays_subdivision", subdivision)):
        try:
            check_country(country, checked)
        except CalendarError as exc:
            report(key, str(exc))
            return False
    return True


def _read(
    definition: Mapping[str, Any], report: Callable[[str, str], None]
) -> tuple[list[list[Window]], DaysOff | None]:
    """Check every part of a definition, reporting each problem; return what parsed."""
    _check_zone(str(definition.get("timezone", "UTC")), report)
    hours = definition.get("hours") or {}
    if not isinstance(hours, Mapping):
        report("hours", "must be a table of weekdays (mon … sun)")
        hours = {}
    week = [_day_windows(hours.get(day, ()), report, day) for day in WEEKDAYS]
    if not any(hours.get(day) for day in WEEKDAYS):  # (bad windows are reported already)
        report("hours", "no working windows on any day (a day not listed is closed)")
    dates, yearly = _holidays(definition.get("holidays", ()), report)
    if _country(definition, report):
        country = str(definition["holidays_country"])
        subdivision = str(definition.get("holidays_subdivision", ""))
        return week, DaysOff(dates, yearly, country, subdivision)
    return week, DaysOff(dates, yearly) if dates or yearly else None


def calendar_from_definition(name: str, definition: Mapping[str, Any]) -> WorkingCalendar:
    """Build the calendar a stored definition describes; raises CalendarError (its first
    problem, naming the key) when the definition is unusable."""
    problems: list[str] = []
    week, days_off = _read(definition, lambda key, msg: problems.append(f"{key}: {msg}"))
    if problems:
        raise CalendarError(f"calendar {name!r}: {problems[0]}")
    return WorkingCalendar(
        name,
        str(definition.get("timezone", "UTC")),
        week,
        days_off,
        definition=dict(definition),
    )


def definition_from_config(calendar: CalendarConfig, base_dir: Path) -> dict[str, Any]:
    """The JSON-able definition of a ``[[calendars]]`` entry, with its iCalendar file (relative
    to ``base_dir``) expanded to dates. Raises CalendarError naming the first problem."""
    problems, file_days = _check_config(calendar, base_dir)
    if problems:
        raise CalendarError(f"calendar {calendar.name!r}: {problems[0]}")
    holidays = list(calendar.holidays)
    listed = set(holidays)
    holidays += [day.isoformat() for day in file_days if day.isoformat() not in listed]
    definition: dict[str, Any] = {
        "timezone": calendar.timezone,
        "hours": {day: list(getattr(calendar.hours, day)) for day in WEEKDAYS},
        "holidays": holidays,
    }
    if calendar.holidays_country:
        definition["holidays_country"] = calendar.holidays_country
        definition["holidays_subdivision"] = calendar.holidays_subdivision
    return definition


def calendar_problems(calendar: CalendarConfig, base_dir: Path) -> list[str]:
    """Every problem of a ``[[calendars]]`` entry as a "key: message" line (keys relative to
    the entry, e.g. "hours.mon[0]"); empty when the entry is usable."""
    return _check_config(calendar, base_dir)[0]


def _check_config(calendar: CalendarConfig, base_dir: Path) -> tuple[list[str], list[date]]:
    """The problems of an entry, and the days its iCalendar file lists."""
    problems: list[str] = []

    def report(key: str, message: str) -> None:
        problems.append(f"{key}: {message}")

    raw = {
        "timezone": calendar.timezone,
        "hours": {day: getattr(calendar.hours, day) for day in WEEKDAYS},
        "holidays": calendar.holidays,
        "holidays_country": calendar.holidays_country,
        "holidays_subdivision": calendar.holidays_subdivision,
    }
    _read(raw, report)
    file_days: list[date] = []
    if calendar.holidays_file:
        try:
            file_days = ics_days(_resolve(calendar.holidays_file, base_dir))
        except CalendarError as exc:
            report("holidays_file", str(exc))
    return problems, file_days


def _resolve(path: str, base_dir: Path) -> Path:
    given = Path(path).expanduser()
    return given if given.is_absolute() else base_dir / given
