"""Control headers read as ticket values (Znuny's NewTicket/FollowUp/Reject, REFERENCE §2, §5).

Called by `apply` for each planned mail: which sender type and visibility its article gets,
which owner, responsible, lock, priority and state a new ticket starts with, and which update
a follow-up asks of its ticket (state, pending time, lock, priority, queue, owner, responsible,
title, SLA). What
such an update means — its columns, its order, its history — is the ticket service's
(`tickets.changes`); this module only reads the X-PyTRS-* headers. Unknown names fall back to
the defaults, as in Znuny; the fallback is noted in the mail's routing trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytrs.routing.decision import Action, Decision
from pytrs.tickets.model import TicketUpdate
from pytrs.tickets.pending import parse_pending_time
from pytrs.vocabulary import znuny

SENDER_TYPE_IDS = {name: i for i, name in znuny.SENDER_TYPES}
LOCK_IDS = {name: i for i, name in znuny.LOCK_TYPES}
_PENDING_STATES = frozenset(
    i for i, _name, kind in znuny.STATES
    if dict(znuny.STATE_TYPES)[kind] in ("pending reminder", "pending auto")
)  # fmt: skip
_DYNAMIC_FIELD = re.compile(r"X-PyTRS-(FollowUp-)?DynamicField-([A-Za-z0-9]+)")
# Znuny's Perl truthiness for yes/no headers, as admins write them.
_FALSE = frozenset({"", "0", "no", "false", "off"})


@dataclass(frozen=True, slots=True)
class Lookups:
    """Names resolved per batch: agent logins, dynamic fields, queues (name → id)."""

    users: Mapping[str, int]  # valid agents' ids by login
    fields: Mapping[str, int]
    queues: Mapping[str, int]
    slas: Mapping[str, int] = field(default_factory=dict)  # valid SLAs by name

    def user(self, value: str) -> int | None:
        """A valid agent's id from a login or an id, else None."""
        value = value.strip()
        if value.isdigit():
            return int(value) if int(value) in self.users.values() else None
        return self.users.get(value)

    def login(self, user_id: int) -> str:
        return next((login for login, i in self.users.items() if i == user_id), str(user_id))


def article_kind(
    decision: Decision, control: Mapping[str, str], *, agent: bool = False, comment: bool = False
) -> tuple[str, bool]:
    """(sender type name, visible for the customer) of the mail's article."""
    follow_up = decision.action is Action.FOLLOW_UP
    if agent and follow_up:
        # An authenticated agent's answer; to the comment address, an internal note.
        return "agent", not comment
    prefix = "X-PyTRS-FollowUp-" if follow_up else "X-PyTRS-"
    external = decision.external
    default_type = external.sender_type if external else "customer"
    sender = control.get(prefix + "SenderType", "").strip().lower() or default_type
    visible_text = control.get(prefix + "IsVisibleForCustomer", "").strip().lower()
    if visible_text:
        visible = visible_text not in _FALSE
    else:
        visible = external.visible_for_customer if external else True
    if decision.internal:
        visible = False
    return (sender if sender in SENDER_TYPE_IDS else "customer"), visible


def new_ticket_values(
    control: Mapping[str, str], lookups: Lookups, now: int = 0
) -> tuple[dict[str, Any], list[str]]:
    """Owner, responsible, lock, priority, state, pending time (relative to `now`, epoch
    seconds) and SLA of a new ticket, and notes on fallbacks."""
    notes: list[str] = []
    values: dict[str, Any] = {
        "user_id": znuny.USER_ROOT, "responsible_user_id": znuny.USER_ROOT,
        "ticket_lock_id": znuny.LOCK_UNLOCK, "ticket_priority_id": znuny.PRIORITY_NORMAL,
        "ticket_state_id": znuny.STATE_NEW,
    }  # fmt: skip
    for column, names in (
        ("user_id", ("X-PyTRS-OwnerID", "X-PyTRS-Owner")),
        ("responsible_user_id", ("X-PyTRS-ResponsibleID", "X-PyTRS-Responsible")),
    ):
        for name in names:
            if control.get(name):
                user = lookups.user(control[name])
                if user is None:
                    notes.append(f"{name} {control[name]!r} is no valid agent; ignored")
                else:
                    values[column] = user
                    break
    _named(control, "X-PyTRS-Priority", znuny.PRIORITY_IDS, "ticket_priority_id", values, notes)
    _named(control, "X-PyTRS-State", znuny.STATE_IDS, "ticket_state_id", values, notes)
    _named(control, "X-PyTRS-Lock", LOCK_IDS, "ticket_lock_id", values, notes)
    sla_id = _sla_id(control, lookups, notes)
    if sla_id is not None:
        values["sla_id"] = sla_id
    until = _pending_time(control, "X-PyTRS-State-PendingTime", now, notes)
    if until is not None:
        if values["ticket_state_id"] in _PENDING_STATES:
            values["until_time"] = until
        else:
            notes.append("X-PyTRS-State-PendingTime ignored: the state is not a pending one")
    return values, notes


def _sla_id(control: Mapping[str, str], lookups: Lookups, notes: list[str]) -> int | None:
    """The valid SLA `X-PyTRS-SLAID` or `X-PyTRS-SLA` names (Znuny: the id first)."""
    for header in ("X-PyTRS-SLAID", "X-PyTRS-SLA"):
        value = control.get(header, "").strip()
        if not value:
            continue
        if header.endswith("ID") and value.isdigit() and int(value) in lookups.slas.values():
            return int(value)
        if value in lookups.slas:
            return lookups.slas[value]
        notes.append(f"{header} {value!r} is no valid SLA; ignored")
    return None


def _pending_time(
    control: Mapping[str, str], header: str, now: int, notes: list[str]
) -> int | None:
    value = control.get(header, "").strip()
    if not value:
        return None
    found = parse_pending_time(value, now)
    if found is None or found <= 0:
        notes.append(f"{header} {value!r} is no time; ignored")
        return None
    return found


def _named(
    control: Mapping[str, str], header: str, ids: Mapping[str, int], column: str,
    values: dict[str, Any], notes: list[str],
) -> None:  # fmt: skip
    name = control.get(header, "").strip()
    if not name:
        return
    if name in ids:
        values[column] = ids[name]
    else:
        notes.append(f"{header} {name!r} is unknown; default kept")


def follow_up_update(
    decision: Decision, control: Mapping[str, str], lookups: Lookups, now: int = 0
) -> tuple[TicketUpdate, list[str]]:
    """What a follow-up asks to change on its ticket, as the ticket service's update, and
    notes on headers that name nothing valid (ignored, as in Znuny). The order of the steps
    and their history are the service's (`tickets.changes`)."""
    notes: list[str] = []
    if decision.action is not Action.FOLLOW_UP or decision.internal:
        return TicketUpdate(), notes
    owner = _follow_up_agent(control, lookups, notes, "Owner")
    responsible = _follow_up_agent(control, lookups, notes, "Responsible")
    priority = control.get("X-PyTRS-FollowUp-Priority", "").strip() or None
    if priority is not None and priority not in znuny.PRIORITY_IDS:
        notes.append(f"X-PyTRS-FollowUp-Priority {priority!r} is unknown; ignored")
        priority = None
    queue = control.get("X-PyTRS-FollowUp-Queue", "").strip() or None
    if queue is not None and queue not in lookups.queues:
        notes.append(f"X-PyTRS-FollowUp-Queue {queue!r} does not exist; ignored")
        queue = None
    title = control.get("X-PyTRS-FollowUp-Title", "").strip() or None
    sla = control.get("X-PyTRS-FollowUp-SLA", "").strip() or None
    if sla is not None and sla not in lookups.slas:
        notes.append(f"X-PyTRS-FollowUp-SLA {sla!r} is no valid SLA; ignored")
        sla = None
    update = TicketUpdate(
        state=decision.new_state or None, priority=priority, queue=queue, owner=owner,
        responsible=responsible, lock=_follow_up_lock(decision, control, notes), title=title,
        sla=sla,
        pending_until=_pending_time(control, "X-PyTRS-FollowUp-State-PendingTime", now, notes),
    )  # fmt: skip
    return update, notes


def _follow_up_agent(
    control: Mapping[str, str], lookups: Lookups, notes: list[str], role: str
) -> str | None:
    """The login an `X-PyTRS-FollowUp-<role>ID` / `-<role>` header names, if valid."""
    for name in (f"X-PyTRS-FollowUp-{role}ID", f"X-PyTRS-FollowUp-{role}"):
        value = control.get(name, "").strip()
        if not value:
            continue
        user = lookups.user(value)
        if user is None:
            notes.append(f"{name} {value!r} is no valid agent; ignored")
            continue
        return lookups.login(user)
    return None


def _follow_up_lock(decision: Decision, control: Mapping[str, str], notes: list[str]) -> str | None:
    wanted = control.get("X-PyTRS-FollowUp-Lock", "").strip()
    if wanted in LOCK_IDS:
        return wanted
    if wanted:
        notes.append(f"X-PyTRS-FollowUp-Lock {wanted!r} is unknown; ignored")
        return None
    # The queue's follow-up lock on a ticket that was closed (routing decided).
    return "lock" if decision.lock else None


def dynamic_field_values(
    decision: Decision, control: Mapping[str, str], lookups: Lookups
) -> tuple[dict[int, str], list[str]]:
    """Field id → value to store on the ticket: `X-PyTRS-DynamicField-<Name>` on new tickets,
    `X-PyTRS-FollowUp-DynamicField-<Name>` on follow-ups, and an external number."""
    follow_up = decision.action is Action.FOLLOW_UP
    if decision.action not in (Action.NEW_TICKET, Action.FOLLOW_UP) or decision.internal:
        return {}, []
    values: dict[int, str] = {}
    notes: list[str] = []
    wanted: list[tuple[str, str]] = []
    if decision.external is not None and not follow_up:
        wanted.append((decision.external.field, decision.external.value))
    for header, value in control.items():
        found = _DYNAMIC_FIELD.fullmatch(header)
        if found and bool(found.group(1)) == follow_up:
            wanted.append((found.group(2), value))
    for name, value in wanted:
        field_id = lookups.fields.get(name)
        if field_id is None:
            notes.append(f"dynamic field {name} does not exist; value not stored")
        else:
            values[field_id] = value[:3800]
    return values, notes
