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
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.parsers import ParsedMail, message_id_md5
from pytrs.postmaster.filters import RuleHit
from pytrs.routing.decision import Action, Decision, RoutingInput
from pytrs.routing.subject import clean_subject, ticket_title
from pytrs.schema import seed
from pytrs.schema.inbox_repo import DONE, ClaimedMessage
from pytrs.schema.tables import (
    article,
    article_data_mime,
    article_data_mime_attachment,
    article_data_mime_plain,
    ticket,
    ticket_history,
)
from pytrs.schema.ticket_repo import CustomerInfo, QueueInfo

# Header fields are single lines (REFERENCE §12) and bounded so one absurd header cannot make
# the row unstorable.
_FIELD_MAX = 100_000


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
    results: list[dict[str, Any]] = field(default_factory=list)
    # Tickets created earlier in this batch, by the placeholder id routing saw (negative).
    created: dict[int, int] = field(default_factory=dict)


class _Rows:
    """Rows collected during the batch and written per table at the end."""

    def __init__(self) -> None:
        self.by_table: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        self.state_changes: list[dict[str, Any]] = []
        self.touched: dict[int, datetime] = {}

    async def flush(self, conn: AsyncConnection, now: datetime) -> None:
        for table in (
            article_data_mime, article_data_mime_plain, article_data_mime_attachment,
            ticket_history,
        ):  # fmt: skip
            rows = self.by_table.get(table)
            if rows:
                await conn.execute(insert(table), rows)
        if self.state_changes:
            await conn.execute(
                update(ticket)
                .where(ticket.c.id == bindparam("t_id"))
                .values(ticket_state_id=bindparam("t_state")),
                self.state_changes,
            )
        if self.touched:
            await conn.execute(
                update(ticket)
                .where(ticket.c.id == bindparam("t_id"))
                .values(change_time=bindparam("t_time")),
                # In id order, so concurrent workers lock tickets in the same order.
                [{"t_id": t, "t_time": self.touched[t]} for t in sorted(self.touched)],
            )


def _audit(now: datetime) -> dict[str, Any]:
    return {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}


def _field(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")[:_FIELD_MAX]


async def apply_batch(
    conn: AsyncConnection, planned: list[Planned], ctx: ApplyContext
) -> list[dict[str, Any]]:
    """Write every planned message; returns one inbox outcome per message.

    Three round trips carry the batch whatever its size: the new tickets (ids returned in
    order), the articles (likewise), then one executemany per dependent table.
    """
    rows = _Rows()
    await _create_tickets(conn, [p for p in planned if p.decision.action is Action.NEW_TICKET], ctx)
    ticket_ids = [_ticket_id(plan, ctx) for plan in planned]
    article_ids = await _insert_articles(conn, planned, ticket_ids, ctx)
    for plan, ticket_id, article_id in zip(planned, ticket_ids, article_ids, strict=True):
        _record_article(plan, ticket_id, article_id, ctx, rows)
        ctx.results.append(
            {
                "id": plan.claimed.id,
                "state": DONE,
                "ticket_id": ticket_id,
                "article_id": article_id,
                "trace": json.dumps(_trace(plan), ensure_ascii=False),
            }
        )
    await rows.flush(conn, ctx.now)
    return ctx.results


def _trace(plan: Planned) -> dict[str, Any]:
    d = plan.decision
    return {
        "action": d.action.value,
        "queue": d.queue,
        "ticket": plan.tn or (d.ticket.tn if d.ticket else ""),
        "followup_via": d.followup_via,
        "reopen": d.reopen,
        "reasons": list(d.reasons),
        "warnings": list(plan.mail.warnings),
        "classification": _classification(plan.mail),
        "rules": [
            {"rule": hit.rule, "matched": [list(m) for m in hit.matched]} for hit in plan.rule_hits
        ],
        "control": plan.control,
    }


def _classification(mail: ParsedMail) -> dict[str, Any]:
    """What the parser recognised, for the trace (responders act on the same flags)."""
    found: dict[str, Any] = {
        name: True
        for name in ("is_auto_reply", "is_out_of_office", "is_list", "loop")
        if getattr(mail, name)
    }
    if mail.bounce is not None:
        b = mail.bounce
        found["bounce"] = {
            "recipient": b.recipient, "status": b.status, "permanent": b.permanent,
            "original_message_id": b.original_message_id, "format": b.format,
        }  # fmt: skip
    return found


def _history(
    rows: _Rows, name: str, kind: str, ticket_id: int, article_id: int | None,
    queue_id: int, state_id: int, now: datetime,
) -> None:  # fmt: skip
    rows.by_table[ticket_history].append(
        {
            "name": name[:200], "history_type_id": seed.history_type_id(kind),
            "ticket_id": ticket_id, "article_id": article_id, "type_id": 1, "queue_id": queue_id,
            "owner_id": seed.USER_ROOT, "priority_id": seed.PRIORITY_NORMAL, "state_id": state_id,
            **_audit(now),
        }
    )  # fmt: skip


def _ticket_row(plan: Planned, ctx: ApplyContext) -> dict[str, Any]:
    decision = plan.decision
    sender = plan.mail.from_address
    customer = ctx.customers.get(sender)
    subject = plan.mail.subject
    if decision.ticket is not None:  # a follow-up to a closed ticket that opens a new one
        subject = clean_subject(subject, decision.ticket.tn, hook=ctx.hook)
    control = plan.control
    customer_user = control.get("X-PyTRS-CustomerUser") or (customer.login if customer else sender)
    customer_id = control.get("X-PyTRS-CustomerNo") or (
        customer.customer_id if customer else sender
    )
    return {
        "tn": plan.tn, "title": ticket_title(control.get("X-PyTRS-Title") or subject),
        "queue_id": ctx.queues[decision.queue].id,
        "ticket_lock_id": seed.LOCK_UNLOCK, "type_id": 1, "user_id": seed.USER_ROOT,
        "responsible_user_id": seed.USER_ROOT,
        # Unknown names fall back to the defaults, as in Znuny.
        "ticket_priority_id": seed.PRIORITY_IDS.get(
            control.get("X-PyTRS-Priority", ""), seed.PRIORITY_NORMAL
        ),
        "ticket_state_id": seed.STATE_IDS.get(control.get("X-PyTRS-State", ""), seed.STATE_NEW),
        "customer_id": customer_id[:150] or None,
        "customer_user_id": customer_user[:250] or None,
        "timeout": 0, "until_time": 0, "escalation_time": 0, "escalation_update_time": 0,
        "escalation_response_time": 0, "escalation_solution_time": 0, "archive_flag": 0,
        **_audit(ctx.now),
    }  # fmt: skip


async def _create_tickets(conn: AsyncConnection, new: list[Planned], ctx: ApplyContext) -> None:
    if not new:
        return
    result = await conn.execute(
        insert(ticket).returning(ticket.c.id, sort_by_parameter_order=True),
        [_ticket_row(plan, ctx) for plan in new],
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
    conn: AsyncConnection, planned: list[Planned], ticket_ids: list[int], ctx: ApplyContext
) -> list[int]:
    result = await conn.execute(
        insert(article).returning(article.c.id, sort_by_parameter_order=True),
        [
            {
                "ticket_id": ticket_id, "article_sender_type_id": seed.SENDER_CUSTOMER,
                "communication_channel_id": seed.CHANNEL_EMAIL, "is_visible_for_customer": 1,
                "search_index_needs_rebuild": 1,
                "insert_fingerprint": f"inbox-{plan.claimed.id}", **_audit(ctx.now),
            }
            for plan, ticket_id in zip(planned, ticket_ids, strict=True)
        ],
    )  # fmt: skip
    return [int(i) for i in result.scalars()]


def _record_article(
    plan: Planned, ticket_id: int, article_id: int, ctx: ApplyContext, rows: _Rows
) -> None:
    """Queue the rows that hang off one article: MIME fields, raw mail, attachments, history."""
    mail, now, decision = plan.mail, ctx.now, plan.decision
    rows.by_table[article_data_mime].append(
        {
            "article_id": article_id, "a_from": _field(mail.from_),
            "a_reply_to": _field(mail.reply_to), "a_to": _field(mail.to), "a_cc": _field(mail.cc),
            "a_bcc": "", "a_subject": _field(mail.subject),
            "a_message_id": _field(mail.message_id),
            "a_message_id_md5": message_id_md5(mail.message_id),
            "a_in_reply_to": _field(mail.in_reply_to),
            "a_references": _field(" ".join(mail.references)),
            "a_content_type": mail.content_type[:250], "a_body": mail.body,
            "incoming_time": _epoch(now), "content_path": f"{now:%Y/%m/%d}", **_audit(now),
        }
    )  # fmt: skip
    rows.by_table[article_data_mime_plain].append(
        {"article_id": article_id, "body": plan.claimed.raw, **_audit(now)}
    )
    rows.by_table[article_data_mime_attachment].extend(_attachment_rows(mail, article_id, now))
    queue_id = ctx.queues[decision.queue].id if decision.queue in ctx.queues else 1
    if decision.action is Action.NEW_TICKET:
        priority = plan.control.get("X-PyTRS-Priority", "")
        state = plan.control.get("X-PyTRS-State", "")
        priority = priority if priority in seed.PRIORITY_IDS else "3 normal"
        state = state if state in seed.STATE_IDS else "new"
        name = f"%%{plan.tn}%%{decision.queue}%%{priority}%%{state}%%{ticket_id}"
        if decision.ticket is not None:  # opened because the old ticket was closed
            name += f"%%{decision.ticket.tn}"
        _history(rows, name, "NewTicket", ticket_id, None, queue_id, seed.STATE_NEW, now)
        _history(rows, "%%", "EmailCustomer", ticket_id, article_id, queue_id, 1, now)
        return
    assert decision.ticket is not None
    tn = decision.ticket.tn
    if decision.reopen:
        rows.state_changes.append({"t_id": ticket_id, "t_state": seed.STATE_OPEN})
        _history(
            rows, f"%%{decision.ticket.state}%%open%%", "StateUpdate", ticket_id, None,
            queue_id, seed.STATE_OPEN, now,
        )  # fmt: skip
    rows.touched[ticket_id] = now
    note = "%%Follow up rejected." if decision.action is Action.REJECT else ""
    _history(rows, f"%%{tn}{note}", "FollowUp", ticket_id, article_id, queue_id, 1, now)


def _epoch(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).timestamp())


def _attachment_rows(mail: ParsedMail, article_id: int, now: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if mail.safe_html is not None:
        # Znuny keeps the HTML body as an attachment named file-2 (REFERENCE §12). pytrs keeps
        # the sanitised HTML there, the one the web view may show; the original is in the raw
        # mail and can be rendered again with a newer sanitiser.
        html = mail.safe_html.encode("utf-8", "replace")
        rows.append(
            {
                "article_id": article_id, "filename": "file-2",
                "content_size": str(len(html)), "content_type": "text/html; charset=utf-8",
                "content_id": "", "content_alternative": "1", "disposition": "inline",
                "content": html, **_audit(now),
            }
        )  # fmt: skip
    seen: dict[str, int] = {}
    for part in mail.attachments:
        name = part.filename[:250] or "file"
        if name in seen:  # duplicate names get -1, -2 … as in Znuny's storage
            seen[name] += 1
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{seen[name]}.{ext}" if dot and stem else f"{name}-{seen[name]}"
        else:
            seen[name] = 0
        rows.append(
            {
                "article_id": article_id, "filename": name,
                "content_size": str(len(part.content)), "content_type": part.content_type[:450],
                "content_id": part.content_id[:250],
                "content_alternative": "1" if part.content_alternative else "",
                "disposition": part.disposition, "content": part.content, **_audit(now),
            }
        )  # fmt: skip
    return rows
