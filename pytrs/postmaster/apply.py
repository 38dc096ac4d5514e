"""Applying routing decisions: tickets, articles, raw mail, attachments and history rows.

Runs inside the worker's processing transaction, a batch at a time: the new tickets in one
statement and the articles in another (both returning their ids in order, which the rows that
follow need), then everything that only refers to them (MIME fields, raw mail, attachments,
history, state changes) with one executemany per table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.parsers import ParsedMail
from pytrs.postmaster.changes import (
    Lookups,
    article_kind,
    dynamic_field_values,
    follow_up_change,
    new_ticket_values,
)
from pytrs.postmaster.filters import RuleHit
from pytrs.postmaster.rows import (
    attachment_rows,
    audit,
    history_row,
    mime_row,
    trace,
)
from pytrs.routing.decision import Action, Decision, RoutingInput
from pytrs.routing.subject import CleanOptions, clean_subject, ticket_title
from pytrs.schema import outbox_repo, storable
from pytrs.schema.inbox_repo import DONE, DUPLICATE, ClaimedMessage
from pytrs.schema.tables import (
    article,
    article_data_mime,
    article_data_mime_attachment,
    article_data_mime_plain,
    article_data_mime_send_error,
    dynamic_field_value,
    ticket,
    ticket_history,
)
from pytrs.schema.ticket_repo import CustomerInfo, QueueInfo
from pytrs.vocabulary import znuny


@dataclass(slots=True)
class Planned:
    """One claimed message with its parse, its routing input and its decision."""

    claimed: ClaimedMessage
    mail: ParsedMail
    item: RoutingInput
    decision: Decision
    tn: str = ""  # allocated number when the decision creates a ticket
    control: dict[str, str] = field(default_factory=dict)  # X-PyTRS-* in force
    rule_hits: tuple[RuleHit, ...] = ()


@dataclass(slots=True)
class ApplyContext:
    queues: dict[str, QueueInfo]
    customers: dict[str, CustomerInfo]
    hook: str
    now: datetime
    lookups: Lookups = field(default_factory=lambda: Lookups({}, {}, {}))
    # Article ids of referenced Message-IDs: a bounce records a send error on its article.
    articles_by_message_id: dict[str, int] = field(default_factory=dict)
    clean: CleanOptions = field(default_factory=lambda: CleanOptions())
    results: list[dict[str, Any]] = field(default_factory=list)
    # Tickets created earlier in this batch, by the placeholder id routing saw (negative).
    created: dict[int, int] = field(default_factory=dict)
    # Ticket id → state name as this batch leaves it (two follow-ups in one batch).
    states: dict[int, str] = field(default_factory=dict)
    # How long an address that bounced for good gets no more mail ([outbound]).
    suppression_days: float = 30.0


class _Rows:
    """Rows collected during the batch and written per table at the end."""

    def __init__(self) -> None:
        self.by_table: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        self.ticket_values: dict[int, dict[str, Any]] = defaultdict(dict)
        self.replaced_fields: list[dict[str, Any]] = []
        # (address, reason, until, ticket id) of hard bounces.
        self.suppressions: list[tuple[str, str, datetime, int]] = []

    async def flush(self, conn: AsyncConnection) -> None:
        for address, reason, until, ticket_id in self.suppressions:
            await outbox_repo.suppress(conn, address, reason, until, ticket_id)
        if self.replaced_fields:
            await conn.execute(
                delete(dynamic_field_value).where(
                    dynamic_field_value.c.field_id == bindparam("d_field"),
                    dynamic_field_value.c.object_id == bindparam("d_object"),
                ),
                self.replaced_fields,
            )
        for table in (
            article_data_mime, article_data_mime_plain, article_data_mime_attachment,
            ticket_history, dynamic_field_value, article_data_mime_send_error,
        ):  # fmt: skip
            rows = self.by_table.get(table)
            if rows:
                # Header values, file names and control headers are hostile input: cleaned
                # and cut to their columns, so one mail cannot fail the batch.
                await conn.execute(insert(table), storable.rows(table, rows))
        # One executemany per set of columns, tickets in id order so that concurrent workers
        # lock them in the same order.
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for ticket_id in sorted(self.ticket_values):
            values = storable.row(ticket, self.ticket_values[ticket_id])
            groups[tuple(sorted(values))].append(
                {"t_id": ticket_id, **{f"t_{k}": v for k, v in values.items()}}
            )
        for columns, params in groups.items():
            await conn.execute(
                update(ticket)
                .where(ticket.c.id == bindparam("t_id"))
                .values({c: bindparam(f"t_{c}") for c in columns}),
                params,
            )


async def apply_batch(
    conn: AsyncConnection, planned: list[Planned], ctx: ApplyContext
) -> list[dict[str, Any]]:
    """Write every planned message; returns one inbox outcome per message.

    Three round trips carry the batch whatever its size: the new tickets (ids returned in
    order), the articles (likewise), then one executemany per dependent table. A copy of a
    mail already stored adds nothing: its outcome points at the stored article.
    """
    rows = _Rows()
    stored = [p for p in planned if p.decision.action is not Action.DUPLICATE]
    await _create_tickets(conn, [p for p in stored if p.decision.action is Action.NEW_TICKET], ctx)
    ticket_ids = [_ticket_id(plan, ctx) for plan in stored]
    kinds = [
        article_kind(
            plan.decision, plan.control, agent=bool(plan.item.agent), comment=plan.item.comment
        )
        for plan in stored
    ]
    article_ids = await _insert_articles(conn, stored, ticket_ids, kinds, ctx)
    article_by_inbox: dict[int, int] = {}
    for plan, ticket_id, article_id, kind in zip(
        stored, ticket_ids, article_ids, kinds, strict=True
    ):
        article_by_inbox[plan.claimed.id] = article_id
        notes = _record_article(plan, ticket_id, article_id, kind[0], ctx, rows)
        ctx.results.append(
            {
                "id": plan.claimed.id,
                "state": DONE,
                "ticket_id": ticket_id,
                "article_id": article_id,
                "trace": json.dumps(trace(plan, notes), ensure_ascii=False),
            }
        )
    for plan in planned:
        if plan.decision.action is Action.DUPLICATE:
            ctx.results.append(_duplicate_outcome(plan, ctx, article_by_inbox))
    await rows.flush(conn)
    return ctx.results


def _duplicate_outcome(
    plan: Planned, ctx: ApplyContext, article_by_inbox: dict[int, int]
) -> dict[str, Any]:
    copy = plan.decision.duplicate_of
    assert copy is not None
    ticket_id = ctx.created.get(copy.ticket.id, copy.ticket.id)
    article_id = copy.article_id or article_by_inbox.get(copy.inbox_id)
    return {
        "id": plan.claimed.id, "state": DUPLICATE, "ticket_id": ticket_id,
        "article_id": article_id, "trace": json.dumps(trace(plan, []), ensure_ascii=False),
    }  # fmt: skip


@dataclass(slots=True)
class _Where:
    """The ticket row a history entry describes."""

    ticket_id: int
    queue_id: int
    state_id: int = 1
    owner_id: int = znuny.USER_ROOT
    priority_id: int = znuny.PRIORITY_NORMAL


def _history(
    rows: _Rows, name: str, kind: str, where: _Where, article_id: int | None, now: datetime
) -> None:
    row = history_row(name, kind, where.ticket_id, article_id, where.queue_id, now)
    row.update(owner_id=where.owner_id, priority_id=where.priority_id, state_id=where.state_id)
    rows.by_table[ticket_history].append(row)


def _ticket_row(plan: Planned, ctx: ApplyContext) -> dict[str, Any]:
    decision = plan.decision
    sender = plan.mail.from_address
    customer = ctx.customers.get(sender)
    subject = plan.mail.subject
    if decision.ticket is not None:  # opened instead of a follow-up to that ticket
        subject = clean_subject(subject, decision.ticket.tn, hook=ctx.hook, **ctx.clean)
    control = plan.control
    customer_user = control.get("X-PyTRS-CustomerUser") or (customer.login if customer else sender)
    customer_id = control.get("X-PyTRS-CustomerNo") or (
        customer.customer_id if customer else sender
    )
    values, _notes = new_ticket_values(control, ctx.lookups)
    return {
        "tn": plan.tn, "title": ticket_title(control.get("X-PyTRS-Title") or subject),
        "queue_id": ctx.queues[decision.queue].id, "type_id": 1, **values,
        "customer_id": customer_id or None, "customer_user_id": customer_user or None,
        "timeout": 0, "until_time": 0, "escalation_time": 0, "escalation_update_time": 0,
        "escalation_response_time": 0, "escalation_solution_time": 0, "archive_flag": 0,
        **audit(ctx.now),
    }  # fmt: skip


async def _create_tickets(conn: AsyncConnection, new: list[Planned], ctx: ApplyContext) -> None:
    if not new:
        return
    result = await conn.execute(
        insert(ticket).returning(ticket.c.id, sort_by_parameter_order=True),
        storable.rows(ticket, [_ticket_row(plan, ctx) for plan in new]),
    )
    for plan, ticket_id in zip(new, result.scalars(), strict=True):
        # Routing saw tickets created in this batch under a placeholder id (negative).
        ctx.created[-plan.claimed.id] = int(ticket_id)


def _ticket_id(plan: Planned, ctx: ApplyContext) -> int:
    if plan.decision.action is Action.NEW_TICKET:
        return ctx.created[-plan.claimed.id]
    assert plan.decision.ticket is not None
    return ctx.created.get(plan.decision.ticket.id, plan.decision.ticket.id)


async def _insert_articles(
    conn: AsyncConnection, planned: list[Planned], ticket_ids: list[int],
    kinds: list[tuple[int, int]], ctx: ApplyContext,
) -> list[int]:  # fmt: skip
    if not planned:
        return []
    result = await conn.execute(
        insert(article).returning(article.c.id, sort_by_parameter_order=True),
        [
            {
                "ticket_id": ticket_id, "article_sender_type_id": sender_type,
                "communication_channel_id": znuny.CHANNEL_EMAIL,
                "is_visible_for_customer": visible, "search_index_needs_rebuild": 1,
                "insert_fingerprint": f"inbox-{plan.claimed.id}", **audit(ctx.now),
            }
            for plan, ticket_id, (sender_type, visible) in zip(
                planned, ticket_ids, kinds, strict=True
            )
        ],
    )  # fmt: skip
    return [int(i) for i in result.scalars()]


def _record_article(
    plan: Planned, ticket_id: int, article_id: int, sender_type: int, ctx: ApplyContext,
    rows: _Rows,
) -> list[str]:  # fmt: skip
    """Queue the rows that hang off one article (MIME fields, raw mail, attachments) and the
    ticket changes and history it causes; returns notes for the routing trace."""
    mail, now = plan.mail, ctx.now
    rows.by_table[article_data_mime].append(mime_row(mail, article_id, now))
    rows.by_table[article_data_mime_plain].append(
        {"article_id": article_id, "body": plan.claimed.raw, **audit(now)}
    )
    rows.by_table[article_data_mime_attachment].extend(attachment_rows(mail, article_id, now))
    notes = _store_dynamic_fields(plan, ticket_id, ctx, rows)
    email_kind = "EmailCustomer" if sender_type == znuny.SENDER_CUSTOMER else "EmailAgent"
    if plan.decision.action is Action.NEW_TICKET:
        return notes + _new_ticket_history(plan, ticket_id, article_id, email_kind, ctx, rows)
    return notes + _follow_up_effects(plan, ticket_id, article_id, ctx, rows)


def _new_ticket_history(
    plan: Planned, ticket_id: int, article_id: int, email_kind: str, ctx: ApplyContext,
    rows: _Rows,
) -> list[str]:  # fmt: skip
    decision, now = plan.decision, ctx.now
    values, notes = new_ticket_values(plan.control, ctx.lookups)
    where = _Where(
        ticket_id, ctx.queues[decision.queue].id, values["ticket_state_id"], values["user_id"],
        values["ticket_priority_id"],
    )  # fmt: skip
    priority = _name(znuny.PRIORITIES, values["ticket_priority_id"])
    state = _name([(i, n) for i, n, _ in znuny.STATES], values["ticket_state_id"])
    name = f"%%{plan.tn}%%{decision.queue}%%{priority}%%{state}%%{ticket_id}"
    old = decision.ticket
    if old is not None:  # opened instead of a follow-up to that ticket
        name += f"%%{old.tn}"
    _history(rows, name, "NewTicket", where, None, now)
    _history(rows, "%%", email_kind, where, article_id, now)
    _flag_sender(plan, where, article_id, rows, now)
    if old is not None:
        old_id = ctx.created.get(old.id, old.id)
        _history(rows, f"%%{old.tn}%%{old_id}%%Normal", "TicketLinkAdd", where, None, now)
        _history(
            rows, f"%%{plan.tn}%%{ticket_id}%%Normal", "TicketLinkAdd",
            _Where(old_id, ctx.queues[old.queue].id if old.queue in ctx.queues else 1), None, now,
        )  # fmt: skip
        if decision.stranger:
            _history(
                rows, f"%%Opened instead of a follow-up to {old.tn}: "
                f"{plan.item.sender or 'sender'} is not a participant",
                "Misc", where, article_id, now,
            )  # fmt: skip
    return notes


def _follow_up_effects(
    plan: Planned, ticket_id: int, article_id: int, ctx: ApplyContext, rows: _Rows
) -> list[str]:
    decision, now = plan.decision, ctx.now
    assert decision.ticket is not None
    ref = decision.ticket
    current = ctx.states.get(ticket_id, ref.state)
    change = follow_up_change(decision, plan.control, ctx.lookups, current)
    where = _Where(ticket_id, ctx.queues[ref.queue].id if ref.queue in ctx.queues else 1)
    if "ticket_state_id" in change.values:
        ctx.states[ticket_id] = decision.new_state
    rows.ticket_values[ticket_id].update(change.values)
    rows.ticket_values[ticket_id]["change_time"] = now
    for kind, name in change.history:
        _history(rows, name, kind, where, None, now)
    note = "%%Follow up rejected." if decision.action is Action.REJECT else ""
    _history(rows, f"%%{ref.tn}{note}", "FollowUp", where, article_id, now)
    _flag_sender(plan, where, article_id, rows, now)
    if decision.internal:
        _history(
            rows, f"%%Follow-up from {plan.item.sender or 'sender'} kept internal for review: "
            "not a participant of this ticket", "Misc", where, article_id, now,
        )  # fmt: skip
    if decision.followup_via == "bounce":
        _record_bounce(plan, ticket_id, where, ctx, rows)
    return change.notes


def _flag_sender(plan: Planned, where: _Where, article_id: int, rows: _Rows, now: datetime) -> None:
    """Mail from an agent's address that did not authenticate is customer mail, and mail
    claiming one of our own addresses a stranger's: both flagged for the agents."""
    if plan.item.unverified_agent:
        _history(
            rows, f"%%Mail from agent address {plan.item.sender} not authenticated: "
            f"{plan.item.unverified_agent}", "Misc", where, article_id, now,
        )  # fmt: skip
    if plan.decision.own_address:
        _history(
            rows, f"%%Mail from {plan.decision.own_address} is one of our own addresses, but "
            "came from outside: handled as a stranger's mail", "Misc", where, article_id, now,
        )  # fmt: skip


def _record_bounce(
    plan: Planned, ticket_id: int, where: _Where, ctx: ApplyContext, rows: _Rows
) -> None:
    """Znuny's BounceEmail check: the bounced article gets a send error; beyond Znuny, an
    address that bounced for good (5.x.x) gets no more mail for a while, and the ticket says
    so (the outbox sender refuses suppressed addresses)."""
    bounce = plan.mail.bounce
    bounced = ctx.articles_by_message_id.get(plan.item.bounced_message_id)
    if bounce is None or bounced is None:
        return
    detail = " ".join(
        part for part in (bounce.status, bounce.recipient, "permanent" if bounce.permanent
                          else "temporary") if part
    )  # fmt: skip
    rows.by_table[article_data_mime_send_error].append(
        {
            "article_id": bounced, "message_id": plan.item.bounced_message_id[:1000],
            "log_message": f"bounced: {detail}"[:4000], "create_time": ctx.now,
        }
    )  # fmt: skip
    if bounce.permanent and bounce.recipient and ctx.suppression_days > 0:
        until = ctx.now + timedelta(days=ctx.suppression_days)
        reason = f"hard bounce {bounce.status or '5.x.x'} ({plan.item.bounced_message_id})"
        rows.suppressions.append((bounce.recipient.lower(), reason, until, ticket_id))
        _history(
            rows, f"%%No mail to {bounce.recipient} until {until:%Y-%m-%d}: {reason}", "Misc",
            where, None, ctx.now,
        )  # fmt: skip


def _store_dynamic_fields(
    plan: Planned, ticket_id: int, ctx: ApplyContext, rows: _Rows
) -> list[str]:
    values, notes = dynamic_field_values(plan.decision, plan.control, ctx.lookups)
    if not values:
        return notes
    names = {i: n for n, i in ctx.lookups.fields.items()}
    where = _Where(ticket_id, ctx.queues[plan.decision.queue].id)
    for field_id, value in values.items():
        if plan.decision.action is Action.FOLLOW_UP:
            rows.replaced_fields.append({"d_field": field_id, "d_object": ticket_id})
        rows.by_table[dynamic_field_value].append(
            {"field_id": field_id, "object_id": ticket_id, "value_text": value}
        )
        _history(
            rows, f"%%FieldName%%{names[field_id]}%%Value%%{value[:100]}",
            "TicketDynamicFieldUpdate", where, None, ctx.now,
        )  # fmt: skip
    return notes


def _name(pairs: list[tuple[int, str]], wanted: int) -> str:
    return next((name for i, name in pairs if i == wanted), str(wanted))
