"""The README's worked escalation example, recomputed: its configuration must load, and every
row of its table must be what `pytrs.calendars` computes, so the documentation cannot drift
from the code (issue 14: "documented in the README with a worked example").
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pytrs.calendars import calendar_from_definition, definition_from_config
from pytrs.config import parse_config

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "### A worked example: office hours and a 4-hour first response"
# | event | Fri 2027-01-15 16:30 | 240 | Mon 2027-01-18 11:30 |
ROW = re.compile(
    r"^\| (?P<event>[^|]+) \| (?P<start>\w{3} [\d-]+ [\d:]+) \| (?P<minutes>\d+) "
    r"\| (?P<due>\w{3} [\d-]+ [\d:]+) \|$",
    re.MULTILINE,
)


def _example() -> tuple[str, str]:
    """The worked example's TOML block and the text after it (up to the next heading)."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text
    section = text.split(SECTION, 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return block.group(1), section[block.end() :]


def _local(text: str, zone: ZoneInfo) -> int:
    """ "Fri 2027-01-15 16:30" as epoch seconds; the weekday must be the date's."""
    moment = datetime.strptime(text[4:], "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    assert moment.strftime("%a") == text[:3], f"{text}: the date is a {moment:%A}"
    return int(moment.timestamp())


def test_the_readme_example_is_what_the_calendar_computes() -> None:
    toml, prose = _example()
    config = parse_config(tomllib.loads(toml))
    (office,) = config.calendars
    (support,) = config.queues
    calendar = calendar_from_definition(office.name, definition_from_config(office, README.parent))
    zone = ZoneInfo(office.timezone)

    rows = list(ROW.finditer(prose))
    assert len(rows) == 4
    for row in rows:
        start, due = _local(row["start"], zone), _local(row["due"], zone)
        minutes = int(row["minutes"])
        assert calendar.add_working(start, minutes * 60) == due, row["event"]
        assert calendar.working_between(start, due) == minutes * 60, row["event"]

    # The budgets in the table are the configuration's.
    first_response = support.first_response_minutes
    notify, escalates, christmas, update = (int(row["minutes"]) for row in rows)
    assert (escalates, christmas) == (first_response, first_response) == (240, 240)
    assert notify == first_response * support.notify_before_percent // 100
    assert update == support.update_minutes
    assert f"({support.notify_before_percent} % of {first_response})" in rows[0]["event"]
