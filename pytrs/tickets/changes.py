"""What a ticket change means, as pure functions: current ticket + request → columns + history.

Every writer goes through here: the service's single changes (`service.TicketService.update`,
`merge`) and the postmaster's follow-ups (`postmaster.apply`), so the same change produces the
same columns and the same `ticket_history` entries whoever asks. The steps run in Znuny's
FollowUp.pm order (owner, responsible, lock, state, priority, queue, title; then type and
customer), each history entry recording the ticket as that step leaves it. A change to what a
field already holds is no change and writes nothing, as in Znuny's *Set functions.

Invariants raise typed errors (`tickets.errors`); the mail path runs with `strict=False`, which
skips a refused step and says why in `Changes.skipped` instead, since a customer's mail must
never fail on what a filter rule asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pytrs.tickets import history
from pytrs.tickets.errors import InvalidChange, TicketError, TicketMerged, UnknownName
from pytrs.tickets.model import Changed, Changes, Names, TicketRecord, TicketUpdate

TITLE_MAX = 255
PENDING_TYPES = ("pending reminder", "pending auto")
LOCKED = ("lock", "tmp_lock")


def plan_update(
    ticket: TicketRecord, update: TicketUpdate, names: Names, *, strict: bool = True,
    unlock_on_close: bool = True,
) -> Changes:  # fmt: skip
    """The columns and history of `update` applied to `ticket` (see the module docstring).

    With `unlock_on_close`, a ticket that this change closes is unlocked too, as Znuny's
    agent screens do (its PostMaster does not: the mail path passes False).

    Raises TicketMerged for a merged ticket, UnknownName for a name that is not valid and
    InvalidChange for a change the ticket does not allow (only when `strict`).
    """
    refuse_merged(ticket)
    plan = _Plan(Changes(ticket), names, strict)
    for step in (_owner, _responsible, _lock, _state, _pending_time, _priority, _queue, _title,
                 _type, _sla, _customer, _check_pending):  # fmt: skip
        try:
            step(plan, update)
        except TicketError as exc:
            if strict:
                raise
            plan.changes.skipped.append(str(exc))
    _check_lock(plan)
    if unlock_on_close:
        _unlock_on_close(plan)
    return plan.changes


def refuse_merged(ticket: TicketRecord) -> None:
    if ticket.merged:
        raise TicketMerged(
            f"ticket {ticket.tn} was merged into another ticket and takes no more changes"
        )


class _Plan:
    """The changes so far, and the ticket as they leave it."""

    def __init__(self, changes: Changes, names: Names, strict: bool) -> None:
        self.changes = changes
        self.names = names
        self.strict = strict

    @property
    def ticket(self) -> TicketRecord:
        return self.changes.ticket

    def apply(
        self, field: str, old: str, new: str, values: dict[str, Any],
        entry: tuple[str, str], **record: Any,
    ) -> None:  # fmt: skip
        changes = self.changes
        changes.ticket = replace(changes.ticket, **record)
        changes.values.update(values)
        changes.fields.append(Changed(field, old, new))
        changes.history.append(history.entry(*entry, changes.ticket))


def _agent(plan: _Plan, login: str) -> int:
    user_id = plan.names.users.get(login)
    if user_id is None:
        raise UnknownName("agent", login)
    return user_id


def _owner(plan: _Plan, update: TicketUpdate) -> None:
    if update.owner is None:
        return
    user_id = _agent(plan, update.owner)
    t = plan.ticket
    if user_id != t.owner_id:
        plan.apply("owner", t.owner, update.owner, {"user_id": user_id},
                   history.owner_update(update.owner, user_id), owner=update.owner,
                   owner_id=user_id)  # fmt: skip


def _responsible(plan: _Plan, update: TicketUpdate) -> None:
    if update.responsible is None:
        return
    user_id = _agent(plan, update.responsible)
    t = plan.ticket
    if user_id != t.responsible_id:
        plan.apply("responsible", t.responsible, update.responsible,
                   {"responsible_user_id": user_id},
                   history.responsible_update(update.responsible, user_id),
                   responsible=update.responsible, responsible_id=user_id)  # fmt: skip


def _named(
    plan: _Plan, field: str, wanted: str | None, ids: Mapping[str, int], column: str,
    entry: Callable[[str, int, TicketRecord], tuple[str, str]],
) -> None:  # fmt: skip
    """Set the name-valued `field` (lock, priority, queue, type) to `wanted`, by its id in
    `ids`; the ticket record holds the name in `field` and the id in `<field>_id`."""
    if wanted is None:
        return
    new_id = ids.get(wanted)
    if new_id is None:
        raise UnknownName(field, wanted, list(ids))
    t = plan.ticket
    if new_id != getattr(t, f"{field}_id"):
        plan.apply(field, getattr(t, field), wanted, {column: new_id}, entry(wanted, new_id, t),
                   **{field: wanted, f"{field}_id": new_id})  # fmt: skip


def _lock(plan: _Plan, update: TicketUpdate) -> None:
    _named(plan, "lock", update.lock, plan.names.locks, "ticket_lock_id",
           lambda name, _id, _t: history.lock(name))  # fmt: skip


def _priority(plan: _Plan, update: TicketUpdate) -> None:
    _named(plan, "priority", update.priority, plan.names.priorities, "ticket_priority_id",
           lambda name, _id, _t: history.priority_update(name))  # fmt: skip


def _queue(plan: _Plan, update: TicketUpdate) -> None:
    _named(plan, "queue", update.queue, plan.names.queues, "queue_id",
           lambda name, queue_id, _t: history.move(name, queue_id))  # fmt: skip


def _type(plan: _Plan, update: TicketUpdate) -> None:
    def entry(name: str, type_id: int, t: TicketRecord) -> tuple[str, str]:
        return history.type_update(name, type_id, t.type, t.type_id)

    _named(plan, "type", update.type, plan.names.types, "type_id", entry)


def _state(plan: _Plan, update: TicketUpdate) -> None:
    if update.state is None:
        return
    found = plan.names.states.get(update.state)
    if found is None:
        raise UnknownName("state", update.state, list(plan.names.states))
    state_id, state_type = found
    if state_type == "merged":
        raise InvalidChange(f"state {update.state!r} is set by merging a ticket, not by hand")
    t = plan.ticket
    if state_id == t.state_id:
        return
    values: dict[str, Any] = {"ticket_state_id": state_id}
    record: dict[str, Any] = {}
    if t.pending and state_type not in PENDING_TYPES and t.until_time:
        # A ticket that stops waiting forgets its pending time: no reminder, no auto-close.
        values["until_time"], record["until_time"] = 0, 0
    plan.apply("state", t.state, update.state, values,
               history.state_update(t.state, update.state), state=update.state,
               state_id=state_id, state_type=state_type, **record)  # fmt: skip


def _pending_time(plan: _Plan, update: TicketUpdate) -> None:
    """The pending time (`SetPendingTime`), for a ticket in a pending state."""
    wanted = update.pending_until
    if wanted is None:
        return
    t = plan.ticket
    if wanted <= 0:
        raise InvalidChange(f"{wanted} is no pending time")
    if not t.pending:
        raise InvalidChange(f"ticket {t.tn} is {t.state}: only a pending state has a pending time")
    if wanted != t.until_time:
        plan.apply("pending_time", _moment(t.until_time), _moment(wanted), {"until_time": wanted},
                   history.pending_time(wanted), until_time=wanted)  # fmt: skip


def _moment(epoch: int) -> str:
    """A pending time as the change is reported to people ("-" for none)."""
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_pending(plan: _Plan, update: TicketUpdate) -> None:
    """A ticket this change puts in a pending state needs a pending time (only refused on
    the strict path: mail may name a pending state without one, as in Znuny)."""
    t = plan.ticket
    if plan.changes.changed("state") and t.pending and not t.until_time:
        raise InvalidChange(f"state {t.state!r} needs a pending time")


def _sla(plan: _Plan, update: TicketUpdate) -> None:
    """The ticket's SLA by name ("" clears it): its targets override the queue's."""
    if update.sla is None:
        return
    wanted = update.sla.strip()
    sla_id = None
    if wanted:
        sla_id = plan.names.slas.get(wanted)
        if sla_id is None:
            raise UnknownName("sla", wanted, list(plan.names.slas))
    t = plan.ticket
    if sla_id != t.sla_id:
        plan.apply("sla", t.sla, wanted, {"sla_id": sla_id}, history.sla_update(wanted, sla_id),
                   sla=wanted, sla_id=sla_id)  # fmt: skip


def _title(plan: _Plan, update: TicketUpdate) -> None:
    if update.title is None:
        return
    title = " ".join(update.title.split())[:TITLE_MAX]
    if not title:
        raise InvalidChange("a ticket's title cannot be empty")
    t = plan.ticket
    if title != t.title:
        plan.apply("title", t.title, title, {"title": title}, history.title_update(title),
                   title=title)  # fmt: skip


def _customer(plan: _Plan, update: TicketUpdate) -> None:
    if update.customer_user is None and update.customer_id is None:
        return
    t = plan.ticket
    user = t.customer_user if update.customer_user is None else update.customer_user.strip()
    number = t.customer_id if update.customer_id is None else update.customer_id.strip()
    if (user, number) == (t.customer_user, t.customer_id):
        return
    plan.apply("customer", f"{t.customer_id} / {t.customer_user}", f"{number} / {user}",
               {"customer_user_id": user or None, "customer_id": number or None},
               history.customer_update(number, user), customer_user=user,
               customer_id=number)  # fmt: skip


def _check_lock(plan: _Plan) -> None:
    """A ticket that ends closed (or removed) cannot be locked by this change. Checked on the
    end result: a follow-up may lock a closed ticket that it also reopens."""
    t = plan.ticket
    if not (plan.changes.changed("lock") and t.lock in LOCKED and t.closed):
        return
    error = InvalidChange(f"ticket {t.tn} is {t.state}: a closed ticket cannot be locked")
    if plan.strict:
        raise error
    changes = plan.changes
    before = next(c.old for c in changes.fields if c.field == "lock")
    changes.fields = [c for c in changes.fields if c.field != "lock"]
    changes.history = [h for h in changes.history if h.kind not in ("Lock", "Unlock")]
    changes.values.pop("ticket_lock_id", None)
    changes.ticket = replace(t, lock=before, lock_id=plan.names.locks.get(before, t.lock_id))
    changes.skipped.append(str(error))


def _unlock_on_close(plan: _Plan) -> None:
    t = plan.ticket
    if plan.changes.changed("state") and t.closed and t.lock in LOCKED:
        unlock = plan.names.locks["unlock"]
        plan.apply("lock", t.lock, "unlock", {"ticket_lock_id": unlock}, history.lock("unlock"),
                   lock="unlock", lock_id=unlock)  # fmt: skip


def check_merge(source: TicketRecord, target: TicketRecord) -> None:
    """Raises when `source` cannot be merged into `target`."""
    if source.id == target.id:
        raise InvalidChange(f"ticket {source.tn} cannot be merged into itself")
    refuse_merged(source)
    if target.merged:
        raise TicketMerged(
            f"ticket {target.tn} was itself merged into another ticket: merge into that one"
        )


def plan_merge(source: TicketRecord, target: TicketRecord, names: Names) -> Changes:
    """The source's side of a merge: state `merged`, unlocked (Znuny's TicketMerge). The
    `Merged` history entries (both tickets) and the link are the caller's, after the note."""
    check_merge(source, target)
    merged = next((n for n, (_, kind) in names.states.items() if kind == "merged"), None)
    if merged is None:
        raise UnknownName("state", "merged")
    state_id, state_type = names.states[merged]
    plan = _Plan(Changes(source), names, True)
    plan.apply("state", source.state, merged, {"ticket_state_id": state_id},
               history.state_update(source.state, merged), state=merged, state_id=state_id,
               state_type=state_type)  # fmt: skip
    if source.lock != "unlock":
        plan.apply("lock", source.lock, "unlock", {"ticket_lock_id": names.locks["unlock"]},
                   history.lock("unlock"), lock="unlock",
                   lock_id=names.locks["unlock"])  # fmt: skip
    return plan.changes
