"""A [[calendars]] entry → JSON definition → WorkingCalendar, and `pytrs config check`'s lines."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pytrs.calendars import (
    CalendarError,
    calendar_from_definition,
    calendar_problems,
    definition_from_config,
)
from pytrs.calendars.definition import parse_window
from pytrs.config import ConfigError, parse_config
from pytrs.config.model import CalendarConfig, WeekHours

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//pytrs tests//EN
BEGIN:VEVENT
UID:closed@test
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20261207
DTEND;VALUE=DATE:20261209
END:VEVENT
END:VCALENDAR
"""
OFFICE = ["08:00-12:00", "13:00-17:00"]


def epoch(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo("Europe/Berlin")).timestamp())  # type: ignore[misc]


def test_parse_window() -> None:
    assert parse_window("08:00-12:30") == (8 * 3600, 12 * 3600 + 1800)
    assert parse_window("22:00-24:00") == (22 * 3600, 86400)
    assert parse_window("00:00-24:00") == (0, 86400)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8:00-12:00", "is not HH:MM-HH:MM"),
        ("08:00 - 12:00", "is not HH:MM-HH:MM"),
        ("08:60-12:00", "minutes 00-59"),
        ("08:00-24:30", "24:00 as an end"),
        ("24:00-24:00", "hours run 00-23"),
        ("12:00-08:00", "must start before it ends"),
        ("08:00-08:00", "must start before it ends"),
    ],
)
def test_bad_windows(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_window(text)


def test_definition_round_trip_through_json(tmp_path: Path) -> None:
    (tmp_path / "closed.ics").write_text(ICS, encoding="utf-8")
    entry = CalendarConfig(
        name="office",
        timezone="Europe/Berlin",
        hours=WeekHours(mon=tuple(OFFICE), fri=tuple(OFFICE)),
        holidays=("2026-12-24", "12-25"),
        holidays_file="closed.ics",
        holidays_country="DE",
        holidays_subdivision="BY",
    )
    definition = definition_from_config(entry, tmp_path)
    assert definition == {
        "timezone": "Europe/Berlin",
        "hours": {
            "mon": OFFICE,
            "tue": [],
            "wed": [],
            "thu": [],
            "fri": OFFICE,
            "sat": [],
            "sun": [],
        },
        # The file's two days, expanded: the definition does not need the file any more.
        "holidays": ["2026-12-24", "12-25", "2026-12-07", "2026-12-08"],
        "holidays_country": "DE",
        "holidays_subdivision": "BY",
    }
    stored = json.loads(json.dumps(definition))
    (tmp_path / "closed.ics").unlink()
    calendar = calendar_from_definition("office", stored)
    assert calendar.name == "office" and calendar.timezone == "Europe/Berlin"
    assert calendar.definition == stored
    # Friday 4 December 16:00 + 2 h: Monday 7 is off (file), so Friday 11 at 09:00.
    assert calendar.add_working(epoch(2026, 12, 4, 16, 0), 7200) == epoch(2026, 12, 11, 9, 0)
    assert not calendar.is_working(epoch(2026, 12, 25, 9, 0))  # yearly 12-25, a Friday
    assert calendar.is_working(epoch(2026, 12, 14, 9, 0))
    assert not calendar.is_working(epoch(2027, 11, 1, 9, 0))  # All Saints' Day in Bavaria
    assert calendar.working_between(epoch(2026, 12, 21), epoch(2026, 12, 28)) == 8 * 3600


def test_a_country_holiday_is_off() -> None:
    calendar = calendar_from_definition(
        "bavaria",
        {
            "timezone": "Europe/Berlin",
            "hours": {"tue": OFFICE},
            "holidays_country": "DE",
            "holidays_subdivision": "BY",
        },
    )
    assert not calendar.is_working(epoch(2026, 1, 6, 9, 0))  # Epiphany (a Tuesday)
    assert calendar.is_working(epoch(2026, 1, 13, 9, 0))
    berlin = calendar_from_definition(
        "berlin",
        {
            "timezone": "Europe/Berlin",
            "hours": {"tue": OFFICE},
            "holidays_country": "DE",
            "holidays_subdivision": "BE",
        },
    )
    assert berlin.is_working(epoch(2026, 1, 6, 9, 0))


def test_an_unusable_definition_names_its_first_problem() -> None:
    with pytest.raises(
        CalendarError, match=r"^calendar 'x': timezone: unknown time zone 'Mars/Base'"
    ):
        calendar_from_definition("x", {"timezone": "Mars/Base", "hours": {"mon": OFFICE}})
    with pytest.raises(CalendarError, match=r"^calendar 'x': hours: no working windows"):
        calendar_from_definition("x", {"timezone": "UTC", "hours": {}})
    with pytest.raises(CalendarError, match=r"^calendar 'x': holidays_file: cannot read"):
        definition_from_config(
            CalendarConfig(name="x", hours=WeekHours(mon=("08:00-17:00",)), holidays_file="no.ics"),
            Path("/nonexistent"),
        )


# --- `pytrs config check`: one line per bad value, naming the key ------------------------------


def config_errors(entry: dict[str, Any], source: str = "") -> list[str]:
    calendar = {"name": "office", "hours": {"mon": OFFICE}} | entry
    with pytest.raises(ConfigError) as info:
        parse_config({"calendars": [calendar]}, source=source)
    return info.value.errors


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            {"timezone": "Europe/Berlín"},
            "calendars[0].timezone: unknown time zone 'Europe/Berlín' (an IANA name like "
            "Europe/Berlin)",
        ),
        (
            {"timezone": "Europe"},
            "calendars[0].timezone: unknown time zone 'Europe' (an IANA name like Europe/Berlin)",
        ),
        ({"hours": {"mon": ["8-12"]}}, "calendars[0].hours.mon[0]: '8-12' is not HH:MM-HH:MM"),
        (
            {"hours": {"tue": ["09:00-17:00", "08:75-09:00"]}},
            "calendars[0].hours.tue[1]: '08:75-09:00': hours run 00-23 (or 24:00 as an end), "
            "minutes 00-59",
        ),
        (
            {"hours": {"wed": ["17:00-08:00"]}},
            "calendars[0].hours.wed[0]: '17:00-08:00': the window must start before it ends",
        ),
        (
            {"hours": {"thu": ["08:00-12:00", "11:00-17:00"]}},
            "calendars[0].hours.thu: windows '08:00-12:00' and '11:00-17:00' overlap",
        ),
        (
            {"hours": {}},
            "calendars[0].hours: no working windows on any day (a day not listed is closed)",
        ),
        (
            {"holidays": ["12-25", "2026-02-30"]},
            "calendars[0].holidays[1]: '2026-02-30' is not a real date",
        ),
        (
            {"holidays": ["Christmas"]},
            "calendars[0].holidays[0]: 'Christmas' is neither YYYY-MM-DD nor MM-DD",
        ),
        (
            {"holidays_country": "Germany"},
            "calendars[0].holidays_country: unknown holidays country 'Germany' (an ISO 3166 "
            "code such as DE or US)",
        ),
        (
            {"holidays_subdivision": "BY"},
            "calendars[0].holidays_subdivision: needs holidays_country too",
        ),
    ],
)
def test_each_bad_value_is_one_line_naming_the_key(entry: dict[str, Any], error: str) -> None:
    assert config_errors(entry) == [error]


def test_unknown_subdivision_lists_the_known_ones() -> None:
    [error] = config_errors({"holidays_country": "DE", "holidays_subdivision": "XY"})
    assert error.startswith("calendars[0].holidays_subdivision: unknown subdivision 'XY' of DE")
    assert "BY" in error and "\n" not in error


def test_holidays_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    source = str(tmp_path / "pytrs.toml")
    [missing] = config_errors({"holidays_file": "days.ics"}, source=source)
    assert missing.startswith(f"calendars[0].holidays_file: cannot read {tmp_path}/days.ics: ")
    (tmp_path / "days.ics").write_text("BEGIN:VCALENDAR\nnonsense", encoding="utf-8")
    [broken] = config_errors({"holidays_file": "days.ics"}, source=source)
    assert broken.startswith(f"calendars[0].holidays_file: {tmp_path}/days.ics is not an iCal")
    (tmp_path / "days.ics").write_text(ICS, encoding="utf-8")
    config = parse_config(
        {"calendars": [{"name": "office", "hours": {"mon": OFFICE}, "holidays_file": "days.ics"}]},
        source=source,
    )
    assert calendar_problems(config.calendars[0], tmp_path) == []


def test_duplicate_calendar_names() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "calendars": [
                    {"name": "office", "hours": {"mon": OFFICE}},
                    {"name": "office", "hours": {"tue": OFFICE}},
                ]
            }
        )
    assert info.value.errors == [
        "calendars[1].name: duplicate calendar name 'office' (first at calendars[0].name)"
    ]


def test_a_good_calendar_passes() -> None:
    config = parse_config(
        {
            "calendars": [
                {
                    "name": "office",
                    "timezone": "Europe/Berlin",
                    "hours": {"mon": OFFICE, "sun": ["22:00-24:00"]},
                    "holidays": ["2026-12-24", "12-25"],
                    "holidays_country": "DE",
                    "holidays_subdivision": "BY",
                }
            ]
        }
    )
    assert config.calendars[0].hours.sun == ("22:00-24:00",)
