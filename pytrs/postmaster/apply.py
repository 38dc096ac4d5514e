"""Applying routing decisions: tickets, articles, raw mail, attachments, history and links,
through the ticket service's batch functions.

Runs inside the worker's processing transaction, a batch at a time: the new tickets in one
statement and the articles in another (both returning their ids in order, which the rows that
follow need), the tickets the batch writes to loaded (and locked) in one query, then
everything that only refers to them with one executemany per table (`tickets.writes`). This
module translates a mail and its control headers into the service's inputs (`ArticleInput`,
`TicketUpdate`); what a change means and which rows and history it writes is the service's
(`tickets.changes`, `tickets.history`, `tickets.rows`), so a follow-up by mail and the same
change made by an agent leave the same rows.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.postmaster.batch import ApplyContext, Planned
from pytrs.postmaster.changes import (
    article_kind,
    dynamic_field_values,
    follow_up_update,
    new_ticket_values,
)
from pytrs.postmaster.trace import trace
from pytrs.routing.decision import Action
from pytrs.routing.subject import clean_subject, ticket_title
from pytrs.schema import outbox_repo
from pytrs.schema.inbox_repo import DONE, DUPLICATE
from pytrs.tickets import changes as semantics
from pytrs.tickets import history, links, reads, rows
from pytrs.tickets.model import ArticleInput, TicketRecord
from pytrs.tickets.service import article_entry, new_ticket_name
from pytrs.tickets.writes import Writes, insert_articles, insert_tickets


class _Batch:
    """What one batch writes: the service's rows, and what only mail causes (links to closed
    tickets, suppressed addresses)."""

    def __init__(self, ctx: ApplyContext) -> None:
        self.writes = Writes(ctx.now)
        # Follow-ups name states and priorities as Znuny ships them, queues and agents as the
        # batch looked them up.
        self.names = reads.seed_names(
            dict(ctx.lookups.queues), dict(ctx.lookups.users), ctx.lookups.slas
        )
        self.links: list[dict[str, Any]] = []
        # (address, reason, until, ticket id) of hard bounces.
        self.suppressions: list[tuple[str, str, datetime, int]] = []

    async def flush(self, conn: AsyncConnection) -> None:
        for address, reason, until, ticket_id in self.suppressions:
            await outbox_repo.suppress(conn, address, reason, until, ticket_id)
        await links.insert_links(conn, self.links)
        await self.writes.flush(conn)


async def apply_batch(
    conn: AsyncConnection, planned: list[Planned], ctx: ApplyContext
) -> list[dict[str, Any]]:
    """Write every planned message; returns one inbox outcome per message.

    Four round trips carry the batch whatever its size: the new tickets (ids returned in
    order), the tickets written to, the articles (ids in order), then one executemany per
    dependent table. A copy of a mail already stored adds nothing: its outcome points at the
    stored article.
    """
    batch = _Batch(ctx)
    stored = [p for p in planned if p.decision.action is not Action.DUPLICATE]
    new = [p for p in stored if p.decision.action is Action.NEW_TICKET]
    await _create_tickets(conn, new, ctx, batch)
    ticket_ids = [_ticket_id(plan, ctx) for plan in stored]
    await _load_tickets(conn, stored, ticket_ids, ctx, batch)
    contents = [_content(plan) for plan in stored]
    article_ids = await insert_articles(
        conn,
        [rows.article_row(ticket_id, content, f"inbox-{plan.claimed.id}", ctx.now, 1)
         for plan, ticket_id, content in zip(stored, ticket_ids, contents, strict=True)],
    )  # fmt: skip
    article_by_inbox: dict[int, int] = {}
    for plan, ticket_id, article_id, content in zip(
        stored, ticket_ids, article_ids, contents, strict=True
    ):
        article_by_inbox[plan.claimed.id] = article_id
        batch.writes.article(content, article_id)
        notes = _record_article(plan, ticket_id, article_id, content, ctx, batch)
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
    await batch.flush(conn)
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


def _content(plan: Planned) -> ArticleInput:
    """The mail as the article the service stores."""
    sender, visible = article_kind(
        plan.decision, plan.control, agent=bool(plan.item.agent), comment=plan.item.comment
    )
    return rows.article_input(plan.mail, plan.claimed.raw, sender=sender, visible=visible)


def _ticket_values(plan: Planned, ctx: ApplyContext) -> dict[str, Any]:
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
    values, _notes = new_ticket_values(control, ctx.lookups, rows.epoch(ctx.now))
    return {
        "tn": plan.tn, "title": ticket_title(control.get("X-PyTRS-Title") or subject),
        "queue_id": ctx.queues[decision.queue].id, **values,
        "customer_id": customer_id or None, "customer_user_id": customer_user or None,
    }  # fmt: skip


async def _create_tickets(
    conn: AsyncConnection, new: list[Planned], ctx: ApplyContext, batch: _Batch
) -> None:
    values = [_ticket_values(plan, ctx) for plan in new]
    ids = await insert_tickets(conn, [rows.ticket_row(v, ctx.now, 1) for v in values])
    batch.writes.new_tickets(ids)
    for plan, ticket_id, columns in zip(new, ids, values, strict=True):
        # Routing saw tickets created in this batch under a placeholder id (negative).
        ctx.created[-plan.claimed.id] = ticket_id
        # Known without reading it back.
        ctx.tickets[ticket_id] = reads.record_of(
            ticket_id, columns, batch.names, queue=plan.decision.queue
        )


def _ticket_id(plan: Planned, ctx: ApplyContext) -> int:
    if plan.decision.action is Action.NEW_TICKET:
        return ctx.created[-plan.claimed.id]
    assert plan.decision.ticket is not None
    return ctx.created.get(plan.decision.ticket.id, plan.decision.ticket.id)


async def _load_tickets(
    conn: AsyncConnection, stored: list[Planned], ticket_ids: list[int], ctx: ApplyContext,
    batch: _Batch,
) -> None:  # fmt: skip
    """Every existing ticket the batch writes to (and the closed tickets new ones are linked
    to), as they are now; their rows stay locked until the batch commits."""
    wanted = set(ticket_ids)
    # Routing knew each ticket's queue and state by name: they stand in for names the batch's
    # lookups lack (a state Znuny does not ship, an invalid queue).
    known: dict[int, tuple[str, str, str]] = {}
    for plan in stored:
        ref = plan.decision.ticket
        if ref is None:
            continue
        ticket_id = ctx.created.get(ref.id, ref.id)
        known[ticket_id] = (ref.queue, ref.state, ref.state_type)
        if plan.decision.action is Action.NEW_TICKET:
            wanted.add(ticket_id)
    ctx.tickets.update(await reads.load_records(
        conn, wanted - set(ctx.tickets), batch.names, lock=True, known=known
    ))  # fmt: skip


def _record_article(
    plan: Planned, ticket_id: int, article_id: int, content: ArticleInput, ctx: ApplyContext,
    batch: _Batch,
) -> list[str]:  # fmt: skip
    """Queue the ticket changes and history one article causes; returns notes for the
    routing trace."""
    notes = _store_dynamic_fields(plan, ticket_id, ctx, batch)
    if plan.decision.action is Action.NEW_TICKET:
        return notes + _new_ticket_history(plan, ticket_id, article_id, content, ctx, batch)
    return notes + _follow_up_effects(plan, ticket_id, article_id, content, ctx, batch)


def _new_ticket_history(
    plan: Planned, ticket_id: int, article_id: int, content: ArticleInput, ctx: ApplyContext,
    batch: _Batch,
) -> list[str]:  # fmt: skip
    decision, writes = plan.decision, batch.writes
    _values, notes = new_ticket_values(plan.control, ctx.lookups, rows.epoch(ctx.now))
    record = ctx.tickets[ticket_id]
    old = decision.ticket
    writes.history([
        history.entry(*new_ticket_name(record, old.tn if old else ""), record),
        history.entry(*history.email(content.sender == "customer"), record, article_id),
    ])  # fmt: skip
    _flag_sender(plan, record, article_id, batch)
    if old is not None:  # opened instead of a follow-up to that (closed) ticket
        closed = ctx.tickets[ctx.created.get(old.id, old.id)]
        batch.links.append(links.link_row(record.id, closed.id, "Normal", ctx.now, 1))
        writes.history(links.link_entries(record, closed, "Normal"))
        if decision.stranger:
            writes.history(
                [
                    history.entry(
                        *history.misc(
                            f"Opened instead of a follow-up to {old.tn}: "
                            f"{plan.item.sender or 'sender'} is not a participant"
                        ),
                        record,
                        article_id,
                    )
                ]
            )
    return notes


def _follow_up_effects(
    plan: Planned, ticket_id: int, article_id: int, content: ArticleInput, ctx: ApplyContext,
    batch: _Batch,
) -> list[str]:  # fmt: skip
    decision, writes = plan.decision, batch.writes
    update, notes = follow_up_update(decision, plan.control, ctx.lookups, rows.epoch(ctx.now))
    changes = semantics.plan_update(
        ctx.tickets[ticket_id], update, batch.names, strict=False, unlock_on_close=False
    )
    record = ctx.tickets[ticket_id] = changes.ticket
    writes.changes(changes)
    writes.touch(ticket_id)
    rejected = decision.action is Action.REJECT
    kind, name = history.follow_up(record.tn, rejected)
    follow_up = replace(content, history_kind=kind, history_name=name)
    writes.history([article_entry(record, follow_up, article_id)])
    _flag_sender(plan, record, article_id, batch)
    if decision.internal:
        writes.history([history.entry(*history.misc(
            f"Follow-up from {plan.item.sender or 'sender'} kept internal for review: "
            "not a participant of this ticket"), record, article_id)])  # fmt: skip
    if decision.followup_via == "bounce":
        if plan.mail.feedback is not None:
            _record_complaint(plan, record, ctx, batch)
        else:
            _record_bounce(plan, record, ctx, batch)
    return notes + changes.skipped


def _flag_sender(plan: Planned, record: TicketRecord, article_id: int, batch: _Batch) -> None:
    """Mail from an agent's address that did not authenticate is customer mail, and mail
    claiming one of our own addresses a stranger's: both flagged for the agents."""
    found = []
    if plan.item.unverified_agent:
        found.append(f"Mail from agent address {plan.item.sender} not authenticated: "
                     f"{plan.item.unverified_agent}")  # fmt: skip
    if plan.decision.own_address:
        found.append(f"Mail from {plan.decision.own_address} is one of our own addresses, but "
                     "came from outside: handled as a stranger's mail")  # fmt: skip
    batch.writes.history(history.entry(*history.misc(t), record, article_id) for t in found)


def _record_bounce(plan: Planned, record: TicketRecord, ctx: ApplyContext, batch: _Batch) -> None:
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
    batch.writes.send_error(bounced, plan.item.bounced_message_id, f"bounced: {detail}")
    if bounce.permanent and bounce.recipient and ctx.suppression_days > 0:
        until = ctx.now + timedelta(days=ctx.suppression_days)
        reason = f"hard bounce {bounce.status or '5.x.x'} ({plan.item.bounced_message_id})"
        batch.suppressions.append((bounce.recipient.lower(), reason, until, record.id))
        batch.writes.history(
            [
                history.entry(
                    *history.misc(
                        f"No mail to {bounce.recipient} until {until:%Y-%m-%d}: {reason}"
                    ),
                    record,
                )
            ]
        )


def _record_complaint(
    plan: Planned, record: TicketRecord, ctx: ApplyContext, batch: _Batch
) -> None:
    """A complaint about one of our articles: the ticket says who complained about which
    mail, and the address gets no more mail for a while (`[outbound] suppress_on_complaint`)."""
    report = plan.mail.feedback
    if report is None:
        return
    who = report.recipient or "an unnamed recipient"
    said = (
        f"Complaint ({report.feedback_type}) about {plan.item.bounced_message_id} by {who}, "
        f"reported by {report.reporter or 'the provider'} ({report.format})"
    )
    entries = [history.entry(*history.misc(said), record)]
    if report.recipient and ctx.suppress_on_complaint and ctx.suppression_days > 0:
        until = ctx.now + timedelta(days=ctx.suppression_days)
        reason = f"complaint ({report.feedback_type}) about {plan.item.bounced_message_id}"
        batch.suppressions.append((report.recipient.lower(), reason, until, record.id))
        stop = f"No mail to {report.recipient} until {until:%Y-%m-%d}: {reason}"
        entries.append(history.entry(*history.misc(stop), record))
    batch.writes.history(entries)


def _store_dynamic_fields(
    plan: Planned, ticket_id: int, ctx: ApplyContext, batch: _Batch
) -> list[str]:
    values, notes = dynamic_field_values(plan.decision, plan.control, ctx.lookups)
    if not values:
        return notes
    names = {i: n for n, i in ctx.lookups.fields.items()}
    record = ctx.tickets[ticket_id]
    replace_old = plan.decision.action is Action.FOLLOW_UP
    for field_id, value in values.items():
        batch.writes.dynamic_field(ticket_id, field_id, value, replace=replace_old)
        batch.writes.history([history.entry(*history.dynamic_field(names[field_id], value),
                                            record)])  # fmt: skip
    return notes
