"""Escalation targets provisioned at start (issue 14): `[[queues]]` budgets into the queue row's
Znuny columns, `[[slas]]` into `sla` rows, `[[calendars]]` into `business_calendar` rows, and
the escalation generation raised only when one of them changed, so that a restart with the
same file does not make the scheduler recompute every open ticket.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from pytrs.config import Config, ConfigError
from pytrs.provisioning import provision
from pytrs.schema import generations
from pytrs.schema.database import Database
from pytrs.tickets.escalation_index import load_policy

from .conftest import make_config

OFFICE = {
    "name": "office",
    "timezone": "Europe/Berlin",
    "hours": {day: ["08:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-24", "12-25", "01-01"],
}
SUPPORT = {
    "name": "Support",
    "calendar": "office",
    "first_response_minutes": 240,
    "update_minutes": 480,
    "solution_minutes": 2400,
    "notify_before_percent": 75,
}
OTHERS = [{"name": "Sales", "follow_up": "new_ticket"}, {"name": "Billing", "follow_up": "reject"}]
GOLD = {
    "name": "gold",
    "calendar": "office",
    "first_response_minutes": 60,
    "solution_minutes": 960,
    "notify_before_percent": 80,
    "comments": "Gold customers",
}


def _config(database: dict[str, Any], **overrides: Any) -> Config:
    data: dict[str, Any] = {"calendars": [OFFICE], "queues": [SUPPORT, *OTHERS], "slas": [GOLD]}
    return make_config(database, **{**data, **overrides})


async def _generation(db: Database) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(generations.value(generations.ESCALATION)))).scalar())


async def _rows(db: Database, query: str) -> dict[str, tuple[Any, ...]]:
    """The rows of `query` by their first column."""
    async with db.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in await conn.execute(text(query))}


TARGETS = (
    "calendar_name, first_response_time, first_response_notify, update_time, update_notify, "
    "solution_time, solution_notify"
)


async def test_targets_land_in_the_znuny_columns(
    db: Database, database_settings: dict[str, Any]
) -> None:
    await provision(db, _config(database_settings))
    queues = await _rows(db, f"SELECT name, {TARGETS} FROM queue")
    assert queues["Support"] == ("office", 240, 75, 480, 75, 2400, 75)
    # No budget: zero minutes, no warning share, the default calendar (NULL, as Znuny has it).
    assert queues["Sales"] == (None, 0, None, 0, None, 0, None)
    slas = await _rows(db, f"SELECT name, {TARGETS}, valid_id, comments FROM sla")
    assert slas == {"gold": ("office", 60, 80, 0, 80, 960, 80, 1, "Gold customers")}
    calendars = await _rows(db, "SELECT name, definition FROM business_calendar")
    assert list(calendars) == ["office"]
    definition = json.loads(calendars["office"][0])
    assert isinstance(definition, dict) and definition


async def test_the_generation_moves_only_when_a_target_changes(
    db: Database, database_settings: dict[str, Any]
) -> None:
    await provision(db, _config(database_settings))
    first = await _generation(db)
    assert first > 0  # the first start: everything is new

    await provision(db, _config(database_settings))
    assert await _generation(db) == first  # a restart with the same file

    changes: list[tuple[str, dict[str, Any]]] = [
        ("a queue's budget", {"queues": [{**SUPPORT, "first_response_minutes": 120}, *OTHERS]}),
        ("a queue's calendar", {"queues": [{**SUPPORT, "calendar": ""}, *OTHERS]}),
        ("an SLA's warning share", {"slas": [{**GOLD, "notify_before_percent": 50}]}),
        ("a calendar's hours", {"calendars": [{**OFFICE, "hours": {"mon": ["09:00-17:00"]}}]}),
        ("a calendar's holidays", {"calendars": [{**OFFICE, "holidays": ["12-25"]}]}),
        ("an SLA dropped", {"slas": []}),
    ]
    for what, change in changes:
        before = await _generation(db)
        await provision(db, _config(database_settings, **change))
        assert await _generation(db) == before + 1, what
        await provision(db, _config(database_settings, **change))
        assert await _generation(db) == before + 1, f"{what}, started again"
        await provision(db, _config(database_settings))  # back as it was: a change too
        assert await _generation(db) == before + 2, f"{what}, undone"


async def test_a_comment_or_a_queue_option_is_no_escalation_change(
    db: Database, database_settings: dict[str, Any]
) -> None:
    await provision(db, _config(database_settings))
    before = await _generation(db)
    await provision(
        db,
        _config(
            database_settings,
            queues=[{**SUPPORT, "follow_up": "reject", "comments": "new"}, *OTHERS],
            slas=[{**GOLD, "comments": "Platinum now"}],
        ),
    )
    assert await _generation(db) == before


async def test_dropped_slas_are_retired_and_dropped_calendars_deleted(
    db: Database, database_settings: dict[str, Any]
) -> None:
    await provision(db, _config(database_settings))
    # An SLA made by hand (an admin, a Znuny import) is not the file's to retire.
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "INSERT INTO sla (name, first_response_time, update_time, solution_time, "
                "valid_id, create_time, create_by, change_time, change_by) "
                "VALUES ('hand', 30, 0, 0, 1, CURRENT_TIMESTAMP, 1, CURRENT_TIMESTAMP, 1)"
            )
        )
    unused = {"queues": [{**SUPPORT, "calendar": ""}, *OTHERS], "slas": []}
    await provision(db, _config(database_settings, calendars=[], **unused))
    slas = await _rows(db, "SELECT name, valid_id FROM sla")
    assert slas == {"gold": (2,), "hand": (1,)}
    assert await _rows(db, "SELECT name FROM business_calendar") == {}

    await provision(db, _config(database_settings))  # named again: valid again
    assert (await _rows(db, "SELECT name, valid_id FROM sla"))["gold"] == (2 - 1,)


async def test_a_calendar_that_cannot_be_expanded_names_its_key(
    db: Database, database_settings: dict[str, Any], tmp_path: Path
) -> None:
    """A holidays file `config check` read may be gone by the time the daemon starts."""
    holidays = tmp_path / "holidays.ics"
    holidays.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        "UID:1@test\r\nDTSTART;VALUE=DATE:20261231\r\nSUMMARY:Closed\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    config = _config(database_settings, calendars=[{**OFFICE, "holidays_file": str(holidays)}])
    holidays.unlink()
    with pytest.raises(ConfigError) as info:
        await provision(db, config)
    assert [error.split(":")[0] for error in info.value.errors] == ["calendars[0]"]
    assert await _generation(db) == 0  # nothing was written


async def test_the_start_logs_what_config_check_warns_about(
    db: Database, database_settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(database_settings, slas=[{"name": "bronze", "notify_before_percent": 80}])
    await provision(db, config)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "configuration: slas[0].notify_before_percent: 'bronze' has no first_response, update "
        "or solution budget to warn about"
    ]


async def test_the_escalation_index_counts_in_the_provisioned_calendar(
    db: Database, database_settings: dict[str, Any]
) -> None:
    """What the start stored is what the escalation index computes deadlines with."""
    await provision(db, _config(database_settings))
    async with db.connect() as conn:
        support = (await conn.execute(text("SELECT id FROM queue WHERE name = 'Support'"))).scalar()
        policy = await load_policy(conn)
    targets = policy.targets(support, None)
    assert targets is not None and (targets.response, targets.response_notify) == (240, 75)
    berlin = ZoneInfo("Europe/Berlin")
    friday = int(datetime(2027, 1, 15, 16, 30, tzinfo=berlin).timestamp())
    monday = int(datetime(2027, 1, 18, 11, 30, tzinfo=berlin).timestamp())
    assert policy.calendar_for(support, None).add_working(friday, 240 * 60) == monday
    # Thursday 24th (one-off) and Friday 25th (yearly) are off: Wednesday 16:30 runs on to
    # Monday.
    wednesday = int(datetime(2026, 12, 23, 16, 30, tzinfo=berlin).timestamp())
    after = int(datetime(2026, 12, 28, 11, 30, tzinfo=berlin).timestamp())
    assert policy.calendar_for(support, None).add_working(wednesday, 240 * 60) == after
