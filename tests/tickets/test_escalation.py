"""The escalation clocks' pure semantics (`tickets.escalation`), as tables of Znuny's cases."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytrs.tickets.escalation import (
    ESCALATED,
    NOT_FIRED,
    WARNED,
    Clock,
    ClockFacts,
    DueEvent,
    Targets,
    columns,
    due_events,
    fired,
    history_type,
    recompute,
    update_anchor,
)

T0 = 1_800_000_000  # a Friday, 2027-01-15 08:00 UTC
HOUR = 3600


class Shifted:
    """A calendar in which working time starts an hour late: shows the clocks count in the
    calendar they are given, not in wall-clock time."""

    def add_working(self, start: int, seconds: int) -> int:
        return start + HOUR + seconds


class AllWeek:
    def add_working(self, start: int, seconds: int) -> int:
        return start + seconds


TARGETS = Targets(
    response=60, response_notify=50, update=120, update_notify=75, solution=480,
    solution_notify=0,
)  # fmt: skip


def facts(**kw: object) -> ClockFacts:
    found = ClockFacts(ticket_id=7, created=T0, queue_id=1, sla_id=None, state_type="new",
                       update_anchor=T0)  # fmt: skip
    return replace(found, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("articles", "anchor"),
    [
        ([], T0),
        ([("customer", True, T0)], T0),
        # a run of customer articles: the oldest of the latest run
        ([("customer", True, T0), ("agent", True, T0 + 10), ("customer", True, T0 + 20),
          ("customer", True, T0 + 30)], T0 + 20),
        # the latest is an agent's: that article
        ([("customer", True, T0), ("agent", True, T0 + 10)], T0 + 10),
        # internal notes and system articles do not count
        ([("customer", True, T0), ("agent", True, T0 + 10), ("agent", False, T0 + 20),
          ("system", True, T0 + 30)], T0 + 10),
        ([("customer", True, T0), ("agent", True, T0 + 10), ("customer", False, T0 + 20)],
         T0 + 10),
        # only customer articles: the oldest
        ([("customer", True, T0 + 5), ("customer", True, T0 + 9)], T0 + 5),
        # only internal articles: the ticket's creation
        ([("agent", False, T0 + 5)], T0),
    ],
)  # fmt: skip
def test_update_anchor_walks_back_over_the_latest_customer_run(
    articles: list[tuple[str, bool, int]], anchor: int
) -> None:
    assert update_anchor(T0, articles) == anchor


@pytest.mark.parametrize(
    ("given", "response", "update", "solution", "pending"),
    [
        ({}, T0 + HOUR, T0 + 2 * HOUR, T0 + 8 * HOUR, 0),
        ({"first_response": T0 + 60}, 0, T0 + 2 * HOUR, T0 + 8 * HOUR, 0),
        ({"update_anchor": T0 + 600}, T0 + HOUR, T0 + 600 + 2 * HOUR, T0 + 8 * HOUR, 0),
        # pending pauses the update clock and sets the pending time
        ({"state_type": "pending reminder", "until_time": T0 + 99}, T0 + HOUR, 0, T0 + 8 * HOUR,
         T0 + 99),
        ({"state_type": "pending auto", "until_time": T0 + 99}, T0 + HOUR, 0, T0 + 8 * HOUR,
         T0 + 99),
        # a pending time outside a pending state means nothing
        ({"state_type": "open", "until_time": T0 + 99}, T0 + HOUR, T0 + 2 * HOUR,
         T0 + 8 * HOUR, 0),
        ({"ever_closed": True}, T0 + HOUR, T0 + 2 * HOUR, 0, 0),
        ({"state_type": "closed"}, 0, 0, 0, 0),
        ({"state_type": "removed"}, 0, 0, 0, 0),
        ({"state_type": "merged"}, 0, 0, 0, 0),
    ],
)  # fmt: skip
def test_deadlines_follow_znuny(
    given: dict[str, object], response: int, update: int, solution: int, pending: int
) -> None:
    found = recompute(facts(**given), TARGETS, AllWeek(), None)
    assert found.columns == {
        "escalation_response_time": response, "escalation_update_time": update,
        "escalation_solution_time": solution,
        "escalation_time": min((t for t in (response, update, solution) if t), default=0),
    }  # fmt: skip
    if not (response or update or solution or pending):
        assert found.clock is None
        return
    assert found.clock is not None
    assert (found.clock.response_time, found.clock.update_time) == (response, update)
    assert (found.clock.solution_time, found.clock.pending_time) == (solution, pending)


def test_notify_times_are_the_share_of_the_budget_in_working_time() -> None:
    found = recompute(facts(), TARGETS, Shifted(), None).clock
    assert found is not None
    assert found.response_time == T0 + HOUR + HOUR
    assert found.response_notify == T0 + HOUR + HOUR // 2  # 50 % of 60 minutes
    assert found.update_notify == T0 + HOUR + 90 * 60  # 75 % of 120 minutes
    assert found.solution_notify == 0  # no warning asked for
    assert found.next_due() == found.response_notify


def test_no_targets_and_no_pending_time_mean_no_clock() -> None:
    for targets in (None, Targets(calendar="office")):
        found = recompute(facts(), targets, AllWeek(), None)
        assert found.clock is None
        assert set(found.columns.values()) == {0}


def test_stages_carry_over_while_a_deadline_stays() -> None:
    old = recompute(facts(), TARGETS, AllWeek(), None).clock
    assert old is not None
    old = replace(old, response_stage=WARNED, update_stage=ESCALATED)
    found = recompute(facts(), TARGETS, AllWeek(), old)
    assert found.clock == old
    assert found.stopped == []


def test_a_new_deadline_starts_a_new_cycle_and_stops_an_escalation() -> None:
    old = recompute(facts(), TARGETS, AllWeek(), None).clock
    assert old is not None
    old = replace(old, response_stage=ESCALATED, update_stage=ESCALATED, solution_stage=WARNED)
    # answered, and the customer wrote again: response met, update restarted
    found = recompute(facts(first_response=T0 + 10, update_anchor=T0 + 20), TARGETS, AllWeek(),
                      old)  # fmt: skip
    assert found.stopped == ["response", "update"]
    assert found.clock is not None
    assert found.clock.response_time == 0
    assert (found.clock.update_time, found.clock.update_stage) == (T0 + 20 + 2 * HOUR, NOT_FIRED)
    assert found.clock.solution_stage == WARNED
    # a warned (not escalated) kind that is met stops nothing
    warned = replace(old, response_stage=WARNED, update_stage=NOT_FIRED)
    assert recompute(facts(first_response=T0 + 10), TARGETS, AllWeek(), warned).stopped == []


def test_closing_stops_every_escalated_kind_and_drops_the_clock() -> None:
    old = recompute(facts(), TARGETS, AllWeek(), None).clock
    assert old is not None
    old = replace(old, response_stage=ESCALATED, solution_stage=ESCALATED)
    found = recompute(facts(state_type="closed"), TARGETS, AllWeek(), old)
    assert found.stopped == ["response", "solution"]
    assert found.clock is None


def test_a_new_pending_time_fires_again() -> None:
    pending = facts(state_type="pending reminder", until_time=T0 + 50)
    old = recompute(pending, None, AllWeek(), None).clock
    assert old is not None
    done = replace(old, pending_stage=ESCALATED)
    assert recompute(pending, None, AllWeek(), done).clock == done
    later = recompute(replace(pending, until_time=T0 + 90), None, AllWeek(), done).clock
    assert later is not None
    assert (later.pending_time, later.pending_stage) == (T0 + 90, NOT_FIRED)


CLOCK = Clock(
    7, response_time=T0 + 100, response_notify=T0 + 50, update_time=T0 + 200,
    update_notify=T0 + 150, solution_time=T0 + 400, pending_time=T0 + 300,
)  # fmt: skip


@pytest.mark.parametrize(
    ("clock", "now", "events"),
    [
        (CLOCK, T0 + 49, []),
        (CLOCK, T0 + 50, [("response", "notify_before")]),
        (replace(CLOCK, response_stage=WARNED), T0 + 99, []),
        (replace(CLOCK, response_stage=WARNED), T0 + 100, [("response", "escalated")]),
        # past the deadline without a warning: only the escalation
        (CLOCK, T0 + 160, [("response", "escalated"), ("update", "notify_before")]),
        (CLOCK, T0 + 250, [("response", "escalated"), ("update", "escalated")]),
        (replace(CLOCK, response_stage=ESCALATED, update_stage=ESCALATED), T0 + 300,
         [("pending", "pending")]),
        (replace(CLOCK, response_stage=ESCALATED, update_stage=ESCALATED, pending_stage=ESCALATED),
         T0 + 399, []),
        (replace(CLOCK, response_stage=ESCALATED, update_stage=ESCALATED, pending_stage=ESCALATED),
         T0 + 400, [("solution", "escalated")]),
    ],
)  # fmt: skip
def test_due_events_fire_each_once(clock: Clock, now: int, events: list[tuple[str, str]]) -> None:
    found = due_events(clock, now)
    assert [(e.kind, e.event) for e in found] == events
    after = fired(clock, found)
    assert due_events(after, now) == []
    if found:
        assert after.next_due() is None or after.next_due() > now  # type: ignore[operator]


@pytest.mark.parametrize(
    ("clock", "due"),
    [
        (Clock(1), None),
        (CLOCK, T0 + 50),
        (replace(CLOCK, response_stage=WARNED), T0 + 100),
        (replace(CLOCK, response_stage=ESCALATED), T0 + 150),
        (replace(CLOCK, response_stage=ESCALATED, update_stage=ESCALATED), T0 + 300),
        (replace(CLOCK, response_stage=ESCALATED, update_stage=ESCALATED, pending_stage=ESCALATED),
         T0 + 400),
        (replace(CLOCK, response_stage=2, update_stage=2, pending_stage=2, solution_stage=2), None),
    ],
)  # fmt: skip
def test_next_due_is_the_earliest_unfired_event(clock: Clock, due: int | None) -> None:
    assert clock.next_due() == due


def test_fired_ignores_an_event_about_a_deadline_since_recomputed() -> None:
    stale = DueEvent(7, "response", "escalated", T0 + 1)
    assert fired(CLOCK, [stale]) == CLOCK
    assert fired(CLOCK, [DueEvent(8, "response", "escalated", T0 + 100)]) == CLOCK
    warned = fired(CLOCK, [DueEvent(7, "response", "notify_before", T0 + 100)])
    assert warned.response_stage == WARNED
    # never moved back
    late = DueEvent(7, "response", "notify_before", T0 + 100)
    assert fired(replace(CLOCK, response_stage=ESCALATED), [late]).response_stage == ESCALATED


@pytest.mark.parametrize(
    ("kind", "event", "name"),
    [
        ("response", "notify_before", "EscalationResponseTimeNotifyBefore"),
        ("response", "escalated", "EscalationResponseTimeStart"),
        ("response", "stop", "EscalationResponseTimeStop"),
        ("update", "notify_before", "EscalationUpdateTimeNotifyBefore"),
        ("update", "escalated", "EscalationUpdateTimeStart"),
        ("update", "stop", "EscalationUpdateTimeStop"),
        ("solution", "notify_before", "EscalationSolutionTimeNotifyBefore"),
        ("solution", "escalated", "EscalationSolutionTimeStart"),
        ("solution", "stop", "EscalationSolutionTimeStop"),
    ],
)
def test_history_types_are_znunys(kind: str, event: str, name: str) -> None:
    from pytrs.vocabulary import znuny

    assert history_type(kind, event) == name
    assert name in znuny.HISTORY_TYPES


def test_pending_events_have_no_escalation_history_type() -> None:
    with pytest.raises(ValueError, match="pending"):
        history_type("pending", "pending")


def test_escalation_time_is_the_earliest_set_deadline() -> None:
    assert columns(Clock(1, update_time=5, solution_time=3))["escalation_time"] == 3
    assert columns(Clock(1))["escalation_time"] == 0


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("2030-03-17 17:46:40", 1_900_000_000),
        ("2030-03-17 17:46", 1_900_000_000 - 40),
        ("+50", T0 + 50),
        ("+50s", T0 + 50),
        ("+30m", T0 + 30 * 60),
        (" + 2 h ", T0 + 2 * HOUR),
        ("+3d", T0 + 3 * 86400),
        ("-1h", T0 - HOUR),
        ("+1d 12h", None),  # one unit only, as in Znuny
        ("tomorrow", None),
        ("", None),
    ],
)
def test_pending_times_as_znuny_reads_them(text: str, at: int | None) -> None:
    from pytrs.tickets.pending import parse_pending_time

    assert parse_pending_time(text, T0) == at


_times = st.integers(min_value=0, max_value=1000)
_stages = st.sampled_from((NOT_FIRED, WARNED, ESCALATED))


@st.composite
def clocks(draw: st.DrawFn) -> Clock:
    """A clock as the index writes one: a warning, when there is one, before its deadline."""
    fields: dict[str, int] = {}
    for kind in ("response", "update", "solution"):
        deadline = draw(_times)
        fields[f"{kind}_time"] = deadline
        fields[f"{kind}_notify"] = draw(st.integers(0, deadline)) if deadline else 0
        fields[f"{kind}_stage"] = draw(_stages) if deadline else NOT_FIRED
    fields["pending_time"] = draw(_times)
    fields["pending_stage"] = draw(st.sampled_from((NOT_FIRED, ESCALATED)))
    return Clock(1, **fields)


@given(clocks(), _times, _times)
def test_every_event_fires_once_and_next_due_says_when(clock: Clock, now: int, later: int) -> None:
    events = due_events(clock, now)
    due = clock.next_due()
    # Something fires exactly when the earliest unfired event has come.
    assert bool(events) == (due is not None and due <= now)
    after = fired(clock, events)
    assert due_events(after, now) == []
    assert after.next_due() is None or after.next_due() > now  # type: ignore[operator]
    # Firing later again never repeats what fired now.
    again = due_events(after, max(now, later))
    assert not {(e.kind, e.event) for e in again} & {(e.kind, e.event) for e in events}
