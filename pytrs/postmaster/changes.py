"""Control headers turned into ticket and article values (Znuny's NewTicket/FollowUp/Reject).

Called by `apply` for each planned mail: which sender type and visibility its article gets,
which owner, responsible, lock, priority and state a new ticket starts with, and which changes a
follow-up makes to its ticket (state, lock, priority, queue, owner, responsible, title), each
with the history entry Znuny writes for it (REFERENCE §2, §5). Unknown names fall back to the
defaults, as in Znuny; the fallback is noted in the mail's routing trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytrs.routing.decision import Action, Decision
from pytrs.vocabulary import znuny

SENDER_TYPE_IDS = {name: i for i, name in znuny.SENDER_TYPES}
LOCK_IDS = {name: i for i, name in znuny.LOCK_TYPES}
_DYNAMIC_FIELD = re.compile(r"X-PyTRS-(FollowUp-)?DynamicField-([A-Za-z0-9]+)")
# Znuny's Perl truthiness for yes/no headers, as admins write them.
_FALSE = frozenset({"", "0", "no", "false", "off"})


@dataclass(frozen=True, slots=True)
class Lookups:
    """Names resolved per batch: agent logins, dynamic fields, queues (name → id)."""

    users: Mapping[str, int]  # valid agents' ids by login
    fields: Mapping[str, int]
    queues: Mapping[str, int]

    def user(self, value: str) -> int | None:
        """A valid agent's id from a login or an id, else None."""
        value = value.strip()
        if value.isdigit():
            return int(value) if int(value) in self.users.values() else None
        return self.users.get(value)


@dataclass(slots=True)
class TicketChange:
    """Columns to set on an existing ticket, and the history entries that explain them."""

    values: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)  # (history type, name)
    notes: list[str] = field(default_factory=list)  # for the routing trace


def article_kind(
    decision: Decision, control: Mapping[str, str], *, agent: bool = False, comment: bool = False
) -> tuple[int, int]:
    """(article_sender_type_id, is_visible_for_customer) of the mail's article."""
    follow_up = decision.action is Action.FOLLOW_UP
    if agent and follow_up:
        # An authenticated agent's answer; to the comment address, an internal note.
        return znuny.SENDER_AGENT, int(not comment)
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
    return SENDER_TYPE_IDS.get(sender, znuny.SENDER_CUSTOMER), int(visible)


def new_ticket_values(
    control: Mapping[str, str], lookups: Lookups
) -> tuple[dict[str, Any], list[str]]:
    """Owner, responsible, lock, priority and state of a new ticket, and notes on fallbacks."""
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
    return values, notes


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


def follow_up_change(
    decision: Decision, control: Mapping[str, str], lookups: Lookups, current_state: str
) -> TicketChange:
    """What a follow-up changes on its ticket (FollowUp.pm's order: owner and responsible,
    lock, state, priority, queue, title)."""
    change = TicketChange()
    if decision.action is not Action.FOLLOW_UP or decision.internal:
        return change
    for column, kind, names in (
        ("user_id", "OwnerUpdate", ("X-PyTRS-FollowUp-OwnerID", "X-PyTRS-FollowUp-Owner")),
        ("responsible_user_id", "ResponsibleUpdate",
         ("X-PyTRS-FollowUp-ResponsibleID", "X-PyTRS-FollowUp-Responsible")),
    ):  # fmt: skip
        for name in names:
            value = control.get(name, "").strip()
            if not value:
                continue
            user = lookups.user(value)
            if user is None:
                change.notes.append(f"{name} {value!r} is no valid agent; ignored")
                continue
            change.values[column] = user
            change.history.append((kind, f"%%{value}%%{user}"))
            break
    _follow_up_lock(decision, control, change)
    if decision.new_state and decision.new_state != current_state:
        change.values["ticket_state_id"] = znuny.STATE_IDS[decision.new_state]
        change.history.append(("StateUpdate", f"%%{current_state}%%{decision.new_state}%%"))
    priority = control.get("X-PyTRS-FollowUp-Priority", "").strip()
    if priority:
        if priority in znuny.PRIORITY_IDS:
            change.values["ticket_priority_id"] = znuny.PRIORITY_IDS[priority]
            change.history.append(("PriorityUpdate", f"%%%%{priority}%%{priority}"))
        else:
            change.notes.append(f"X-PyTRS-FollowUp-Priority {priority!r} is unknown; ignored")
    queue = control.get("X-PyTRS-FollowUp-Queue", "").strip()
    if queue and queue != decision.queue:
        if queue in lookups.queues:
            change.values["queue_id"] = lookups.queues[queue]
            change.history.append(("Move", f"%%{queue}%%{lookups.queues[queue]}%%"))
        else:
            change.notes.append(f"X-PyTRS-FollowUp-Queue {queue!r} does not exist; ignored")
    title = control.get("X-PyTRS-FollowUp-Title", "").strip()
    if title:
        change.values["title"] = title[:255]
        change.history.append(("TitleUpdate", f"%%%%{title[:150]}"))
    return change


def _follow_up_lock(decision: Decision, control: Mapping[str, str], change: TicketChange) -> None:
    wanted = control.get("X-PyTRS-FollowUp-Lock", "").strip()
    if wanted in LOCK_IDS:
        change.values["ticket_lock_id"] = LOCK_IDS[wanted]
        change.history.append(("Lock" if wanted != "unlock" else "Unlock", f"%%{wanted}"))
    elif wanted:
        change.notes.append(f"X-PyTRS-FollowUp-Lock {wanted!r} is unknown; ignored")
    elif decision.lock:
        change.values["ticket_lock_id"] = LOCK_IDS["lock"]
        change.history.append(("Lock", "%%lock"))


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
