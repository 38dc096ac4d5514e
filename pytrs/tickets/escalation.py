"""What a ticket's escalation clocks are, as pure functions (Znuny semantics, REFERENCE §11).

Place in the flow: `tickets.escalation_index` gathers a ticket's facts (`ClockFacts`) and its
targets (`Targets`, from its SLA or its queue) in the transaction that changes the ticket, and
`recompute` here turns them into the ticket's `escalation_*` columns and its `Clock` (the
`ticket_escalation` row the scheduler's due scan reads). The scheduler asks `due_events` what
fires at a moment, advances the stages with `fired` before it acts, and names the history
with `history_type`. All times are epoch seconds; 0 means "none", as in Znuny's columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

KINDS = ("response", "update", "solution")
NOT_FIRED, WARNED, ESCALATED = 0, 1, 2

PENDING_TYPES = frozenset({"pending reminder", "pending auto"})
# A ticket nobody works on any more: every deadline is 0.
DONE_TYPES = frozenset({"closed", "removed", "merged"})

_HISTORY_KIND = {"response": "ResponseTime", "update": "UpdateTime", "solution": "SolutionTime"}
_HISTORY_EVENT = {"notify_before": "NotifyBefore", "escalated": "Start", "stop": "Stop"}
# The ticket column of each kind's deadline.
COLUMNS = {
    "response": "escalation_response_time",
    "update": "escalation_update_time",
    "solution": "escalation_solution_time",
}


class WorkingTime(Protocol):
    """What the clocks need of a business calendar (`pytrs.calendars.WorkingCalendar`)."""

    def add_working(self, start: int, seconds: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Targets:
    """A queue's or an SLA's budgets in working minutes and warning shares in percent (0 =
    none), counted in business calendar `calendar` ("" = the default)."""

    calendar: str = ""
    response: int = 0
    response_notify: int = 0
    update: int = 0
    update_notify: int = 0
    solution: int = 0
    solution_notify: int = 0

    def __bool__(self) -> bool:
        return bool(self.response or self.update or self.solution)

    def budget(self, kind: str) -> tuple[int, int]:
        """(minutes, notify percent) of `kind`."""
        return getattr(self, kind), getattr(self, f"{kind}_notify")


@dataclass(frozen=True, slots=True)
class Clock:
    """One `ticket_escalation` row: per kind the deadline, the moment of its warning and how
    far its events went; the pending time and whether its event fired."""

    ticket_id: int
    response_time: int = 0
    response_notify: int = 0
    response_stage: int = NOT_FIRED
    update_time: int = 0
    update_notify: int = 0
    update_stage: int = NOT_FIRED
    solution_time: int = 0
    solution_notify: int = 0
    solution_stage: int = NOT_FIRED
    pending_time: int = 0
    pending_stage: int = NOT_FIRED

    def deadline(self, kind: str) -> int:
        return int(getattr(self, f"{kind}_time"))

    def notify(self, kind: str) -> int:
        return int(getattr(self, f"{kind}_notify"))

    def stage(self, kind: str) -> int:
        return int(getattr(self, f"{kind}_stage"))

    def needed(self) -> bool:
        """Whether the row is worth keeping: some deadline or the pending time is set."""
        return bool(self.pending_time or any(self.deadline(k) for k in KINDS))

    def next_due(self) -> int | None:
        """The earliest event not yet fired: a warning (stage 0), a deadline (not escalated)
        or the pending time (not done); None when nothing is left to fire."""
        found = []
        for kind in KINDS:
            deadline, stage = self.deadline(kind), self.stage(kind)
            if not deadline or stage >= ESCALATED:
                continue
            notify = self.notify(kind)
            found.append(notify if notify and stage == NOT_FIRED else deadline)
        if self.pending_time and self.pending_stage == NOT_FIRED:
            found.append(self.pending_time)
        return min(found, default=None)


@dataclass(frozen=True, slots=True)
class DueEvent:
    """One event the scheduler fires: `kind` "response" | "update" | "solution" | "pending",
    `event` "notify_before" | "escalated" | "pending", about `deadline` (or the pending time)."""

    ticket_id: int
    kind: str
    event: str
    deadline: int


def due_events(clock: Clock, now: int) -> list[DueEvent]:
    """What fires at `now`. A kind already past its deadline fires only "escalated": a
    warning that comes late says nothing the escalation does not."""
    events = []
    for kind in KINDS:
        deadline, stage = clock.deadline(kind), clock.stage(kind)
        if not deadline or stage >= ESCALATED:
            continue
        if deadline <= now:
            events.append(DueEvent(clock.ticket_id, kind, "escalated", deadline))
        elif stage == NOT_FIRED and 0 < clock.notify(kind) <= now:
            events.append(DueEvent(clock.ticket_id, kind, "notify_before", deadline))
    if clock.pending_time and clock.pending_stage == NOT_FIRED and clock.pending_time <= now:
        events.append(DueEvent(clock.ticket_id, "pending", "pending", clock.pending_time))
    return events


def fired(clock: Clock, events: Sequence[DueEvent]) -> Clock:
    """`clock` with the stages of `events` advanced (never moved back). An event about a
    deadline the clock no longer has (recomputed since) advances nothing."""
    stages: dict[str, int] = {}
    for e in events:
        if e.ticket_id != clock.ticket_id:
            continue
        if e.kind == "pending":
            if e.deadline == clock.pending_time:
                stages["pending_stage"] = ESCALATED
            continue
        if e.deadline != clock.deadline(e.kind):
            continue
        reached = ESCALATED if e.event == "escalated" else WARNED
        name = f"{e.kind}_stage"
        stages[name] = max(stages.get(name, clock.stage(e.kind)), reached)
    return replace(clock, **stages)


def history_type(kind: str, event: str) -> str:
    """Znuny's history type of an escalation event ("stop" included), e.g.
    `EscalationResponseTimeNotifyBefore`. Raises ValueError for a pending event or an
    unknown name (pending reminders and auto-close have no escalation history type)."""
    if kind not in _HISTORY_KIND or event not in _HISTORY_EVENT:
        raise ValueError(f"no escalation history type for {kind!r} {event!r}")
    return f"Escalation{_HISTORY_KIND[kind]}{_HISTORY_EVENT[event]}"


# --- computing the clocks from what a ticket is -------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockFacts:
    """What the deadlines of one ticket depend on. `first_response` is the moment of the
    first agent article the customer sees (None: not answered yet); `update_anchor` is where
    the update clock starts (`update_anchor`); `ever_closed` whether it was closed once."""

    ticket_id: int
    created: int
    queue_id: int
    sla_id: int | None
    state_type: str
    until_time: int = 0
    first_response: int | None = None
    update_anchor: int = 0
    ever_closed: bool = False


@dataclass(frozen=True, slots=True)
class Recomputed:
    """A ticket's new `escalation_*` columns, its clock (None: no row) and the kinds whose
    escalation stopped (each a `…Stop` history entry)."""

    columns: dict[str, int]
    clock: Clock | None
    stopped: list[str] = field(default_factory=list)


def update_anchor(created: int, articles: Sequence[tuple[str, bool, int]]) -> int:
    """Where the update clock starts, from `articles` (sender "agent" | "customer" |
    "system", visible to the customer, created) in the order they were written: walking back
    from the latest customer-visible agent or customer article, a run of customer articles
    moves the anchor to its oldest, an agent article ends the walk at itself; with none of
    them, the ticket's creation (Znuny's TicketEscalationIndexBuild)."""
    anchor, seen_customer = created, False
    for sender, visible, at in reversed(articles):
        if not visible or sender not in ("agent", "customer"):
            continue
        if sender == "agent":
            return anchor if seen_customer else at
        anchor, seen_customer = at, True
    return anchor


def deadlines(facts: ClockFacts, targets: Targets | None, calendar: WorkingTime) -> Clock:
    """The deadlines and warning moments of `facts` under `targets` (stages all 0)."""
    found: dict[str, int] = {}
    if targets and facts.state_type not in DONE_TYPES:
        starts = {
            "response": facts.created if facts.first_response is None else 0,
            "update": 0 if facts.state_type in PENDING_TYPES else facts.update_anchor,
            "solution": 0 if facts.ever_closed else facts.created,
        }
        for kind in KINDS:
            minutes, percent = targets.budget(kind)
            start = starts[kind]
            if not (minutes > 0 and start):
                continue
            found[f"{kind}_time"] = calendar.add_working(start, minutes * 60)
            if 0 < percent < 100:
                found[f"{kind}_notify"] = calendar.add_working(start, minutes * 60 * percent // 100)
    pending = facts.until_time if facts.state_type in PENDING_TYPES else 0
    return Clock(facts.ticket_id, pending_time=max(pending, 0), **found)


def recompute(
    facts: ClockFacts, targets: Targets | None, calendar: WorkingTime, old: Clock | None
) -> Recomputed:
    """The ticket's columns and clock after a change, stages carried over from `old` where a
    deadline stays as it was. A kind given a new deadline (or none) starts a new cycle at
    stage 0; if it had escalated, its escalation stops (`Recomputed.stopped`)."""
    new = deadlines(facts, targets, calendar)
    previous = old or Clock(facts.ticket_id)
    stages: dict[str, int] = {}
    stopped = []
    for kind in KINDS:
        if new.deadline(kind) == previous.deadline(kind):
            stages[f"{kind}_stage"] = previous.stage(kind) if new.deadline(kind) else NOT_FIRED
        elif previous.stage(kind) == ESCALATED:
            stopped.append(kind)
    if new.pending_time and new.pending_time == previous.pending_time:
        stages["pending_stage"] = previous.pending_stage
    clock = replace(new, **stages)
    return Recomputed(columns(clock), clock if clock.needed() else None, stopped)


def columns(clock: Clock) -> dict[str, int]:
    """The ticket's `escalation_*` columns of `clock`: each deadline, and the earliest."""
    found = {COLUMNS[kind]: clock.deadline(kind) for kind in KINDS}
    found["escalation_time"] = min((t for t in found.values() if t), default=0)
    return found
