"""The `[scheduler]` notification templates: checked with the configuration (a broken one is
refused by `config check` and `run`, naming its key), and the variables they render with."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from pytrs.calendars import always, calendar_from_definition
from pytrs.config import Config, ConfigError
from pytrs.preflight import check_startup
from pytrs.scheduler.due_scan import DueScanner
from pytrs.scheduler.notifications import (
    Notice,
    Notifier,
    compile_templates,
    local_time,
    notice_variables,
    working_time_text,
)
from pytrs.schema import generations
from pytrs.schema.database import Database, utcnow
from pytrs.schema.tables import business_calendar, queue
from pytrs.schema.ticket_repo import TicketSummary
from pytrs.tickets.service import TicketService

from .conftest import scheduler_config

TICKET = TicketSummary(
    id=7, tn="2026120710000071", title="Printer on fire", queue="Support", state="open",
    state_type="open", priority="3 normal", customer_user="alice", customer_id="ACME",
    customer_email="alice@customer.example",
)  # fmt: skip


def test_the_default_templates_compile(database_settings: dict[str, Any]) -> None:
    templates = compile_templates(scheduler_config(database_settings))
    assert set(templates) == {"notify_before", "escalated", "pending"}


@pytest.mark.parametrize(
    ("key", "source", "says"),
    [
        ("escalated_body", "{{ escalation.nope.deeper }}", "scheduler.escalated_body"),
        ("notify_before_subject", "{{ article.subject }}", "unknown variable 'article'"),
        ("pending_reminder_body", "{% for x in %}", "scheduler.pending_reminder_body"),
    ],
)
def test_a_broken_template_is_refused_naming_its_key(
    database_settings: dict[str, Any], key: str, source: str, says: str
) -> None:
    config = scheduler_config(database_settings, scheduler={key: source})
    with pytest.raises(ConfigError) as caught:
        check_startup(config)
    assert says in str(caught.value)
    assert any(e.startswith(f"scheduler.{key}:") for e in caught.value.errors)


def test_variables_in_the_calendar_zone_with_working_time_left() -> None:
    office = calendar_from_definition(
        "office", {"timezone": "Europe/Berlin", "hours": {"mon": ["08:00-12:00", "13:00-17:00"]}}
    )
    # Monday 2026-12-07 11:30 Berlin (10:30 UTC); the deadline Monday 14:00 Berlin: 30 min
    # before lunch and an hour after it.
    now, deadline = 1_796_639_400, 1_796_648_400
    found = notice_variables(TICKET, Notice("response", "notify_before", deadline), office, now,
                             "Ticket#")  # fmt: skip
    assert found["escalation"] == {
        "kind": "response", "name": "first response", "event": "notify_before",
        "deadline": "2026-12-07 14:00 CET", "left": "1 h 30 min",
    }  # fmt: skip
    assert found["ticket"]["tn"] == TICKET.tn and found["ticket"]["hook"] == "Ticket#"
    assert found["queue"] == {"name": "Support"} and found["pending"] == {"time": ""}
    pending = notice_variables(TICKET, Notice("pending", "pending", now), always(), now, "T#")
    assert pending["pending"] == {"time": "2026-12-07 10:30 UTC"}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "less than a minute"), (59, "less than a minute"), (60, "1 min"), (3540, "59 min"),
     (3600, "1 h 00 min"), (3900, "1 h 05 min"), (-30, "less than a minute")],
)  # fmt: skip
def test_working_time_text(seconds: int, text: str) -> None:
    assert working_time_text(seconds) == text


def test_local_time() -> None:
    assert local_time(1_782_900_000, "America/New_York") == "2026-07-01 06:00 EDT"


async def test_a_queue_calendar_is_the_notifications_zone(
    provisioned: Database, config: Config, service: TicketService
) -> None:
    definition = {"timezone": "Europe/Berlin", "hours": {"mon": ["08:00-17:00"]}}
    async with provisioned.transaction() as conn:
        await conn.execute(
            insert(business_calendar).values(
                name="office", definition=json.dumps(definition), change_time=utcnow()
            )
        )
        await conn.execute(update(queue).where(queue.c.name == "Support").values(
            calendar_name="office"))  # fmt: skip
        await generations.bump(conn, generations.ESCALATION)
        queues = dict((await conn.execute(select(queue.c.name, queue.c.id))).all())
    scanner = DueScanner(provisioned, service, Notifier(config, service.composer),
                         timezone="America/New_York")  # fmt: skip
    async with provisioned.connect() as conn:
        calendar_for = await scanner._calendars(conn)
    assert calendar_for(queues["Support"], None).timezone == "Europe/Berlin"
    assert calendar_for(queues["Sales"], None).timezone == "America/New_York"
