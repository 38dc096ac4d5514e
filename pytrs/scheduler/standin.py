"""A stand-in for the escalation contract of `pytrs.tickets.escalation` and `pytrs.calendars`
until helper "idx"'s and "cal"'s modules are merged: only what the scheduler calls, with the
semantics of the shared contract. Deleted once the real modules are on main.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

KINDS = ("response", "update", "solution")
NOT_FIRED, WARNED, ESCALATED = 0, 1, 2


@dataclass(frozen=True)
class Clock:
    ticket_id: int
    response_time: int = 0
    response_notify: int = 0
    response_stage: int = 0
    update_time: int = 0
    update_notify: int = 0
    update_stage: int = 0
    solution_time: int = 0
    solution_notify: int = 0
    solution_stage: int = 0
    pending_time: int = 0
    pending_stage: int = 0

    def next_due(self) -> int | None:
        times = []
        for kind in KINDS:
            deadline, notify, stage = _kind(self, kind)
            if deadline and stage < ESCALATED:
                times.append(deadline)
            if notify and stage == NOT_FIRED:
                times.append(notify)
        if self.pending_time and self.pending_stage == NOT_FIRED:
            times.append(self.pending_time)
        return min(times) if times else None


@dataclass(frozen=True)
class DueEvent:
    ticket_id: int
    kind: str
    event: str
    deadline: int


def _kind(clock: Clock, kind: str) -> tuple[int, int, int]:
    return (
        getattr(clock, f"{kind}_time"),
        getattr(clock, f"{kind}_notify"),
        getattr(clock, f"{kind}_stage"),
    )


def due_events(clock: Clock, now: int) -> list[DueEvent]:
    out = []
    for kind in KINDS:
        deadline, notify, stage = _kind(clock, kind)
        if deadline and stage < ESCALATED and deadline <= now:
            out.append(DueEvent(clock.ticket_id, kind, "escalated", deadline))
        elif deadline and notify and stage == NOT_FIRED and notify <= now:
            out.append(DueEvent(clock.ticket_id, kind, "notify_before", deadline))
    if clock.pending_time and clock.pending_stage == NOT_FIRED and clock.pending_time <= now:
        out.append(DueEvent(clock.ticket_id, "pending", "pending", clock.pending_time))
    return out


def fired(clock: Clock, events: Sequence[DueEvent]) -> Clock:
    for e in events:
        if e.kind == "pending":
            clock = replace(clock, pending_stage=ESCALATED)
        else:
            stage = ESCALATED if e.event == "escalated" else WARNED
            clock = replace(clock, **{f"{e.kind}_stage": stage})
    return clock


def history_type(kind: str, event: str) -> str:
    suffix = {"notify_before": "NotifyBefore", "escalated": "Start", "stop": "Stop"}[event]
    return f"Escalation{kind.capitalize()}Time{suffix}"


@dataclass(frozen=True)
class WorkingCalendar:
    name: str = ""
    timezone: str = "UTC"

    def working_between(self, start: int, end: int) -> int:
        return max(0, end - start)


async def rebuild(conn: object, ticket_ids: Sequence[int], now: int) -> int:
    """Stand-in of `tickets.escalation_index.rebuild`: recomputes nothing."""
    return 0
