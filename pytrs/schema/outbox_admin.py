"""The outbox as operators see it (`pytrs outbox list|retry|flush`, the admin outbox page).

Place in the flow: beside ``outbox_repo`` (which the stages and the sender use); these queries
list rows with what an operator needs to recognise a mail, and say in one line why a row named
for a retry was left alone.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import Database, for_update
from pytrs.schema.outbox_repo import FAILED, PENDING, SENDING, SENT, Requeue
from pytrs.schema.tables import outbox, ticket

LISTED = (
    "id", "state", "kind", "ticket_id", "recipients", "attempts", "next_attempt_at",
    "last_error", "created_at",
)  # fmt: skip
# Enough of a message to hold its header (for its Subject); a listing never reads whole mails.
HEAD_BYTES = 16384


async def listing(
    conn: AsyncConnection,
    state: str,
    limit: int,
    *,
    with_head: bool = False,
    before: int | None = None,
) -> list[dict[str, Any]]:
    """Newest rows first (`state` or "all"), recipients as a list. `with_head` adds `tn`, the
    ticket's number, and `head`, the start of the message while the row keeps it; `before`
    keeps only rows of a smaller id (the next page of a listing that ended at that id)."""
    columns: list[Any] = [outbox.c[name] for name in LISTED]
    if with_head:
        columns += [ticket.c.tn, func.substr(outbox.c.raw, 1, HEAD_BYTES).label("head")]
    query = select(*columns).order_by(outbox.c.id.desc())
    if with_head:
        query = query.outerjoin(ticket, ticket.c.id == outbox.c.ticket_id)
    if state != "all":
        query = query.where(outbox.c.state == state)
    if before is not None:
        query = query.where(outbox.c.id < before)
    rows = [r._asdict() for r in await conn.execute(query.limit(limit))]
    for row in rows:
        row["recipients"] = json.loads(row["recipients"])
    return rows


async def row(conn: AsyncConnection, row_id: int) -> dict[str, Any] | None:
    """Every column of one row but the message bytes and the claim token, with `tn`, `head`
    and `size_kept` (the start of the message and its length while the row keeps it, else
    None), `recipients` as a list and `results` (each recipient's last relay answer) as a
    mapping; None when there is no row."""
    hidden = {"raw", "claim_token"}
    columns = [c for c in outbox.c if c.name not in hidden]
    kept = (
        func.substr(outbox.c.raw, 1, HEAD_BYTES).label("head"),
        func.length(outbox.c.raw).label("size_kept"),
    )
    query = (
        select(*columns, ticket.c.tn, *kept)
        .outerjoin(ticket, ticket.c.id == outbox.c.ticket_id)
        .where(outbox.c.id == row_id)
    )
    found = (await conn.execute(query)).first()
    if found is None:
        return None
    values = found._asdict()
    values["recipients"] = json.loads(values["recipients"])
    values["results"] = json.loads(values["results"]) if values["results"] else {}
    return values


def refusal(item: Requeue) -> str:
    """Why `requeue_failed` left a row it was asked to retry as it was (one line)."""
    if item.state == SENT:
        return "was sent, nothing to retry"
    if item.state == FAILED:
        return "failed, but its message bytes are gone; it cannot be sent again"
    if item.state == SENDING:
        return "is being sent right now, not failed"
    return f"is {item.state}, not failed; the sender tries it on its own"


async def make_due(
    db: Database, ids: Collection[int] | None, now: datetime
) -> tuple[list[int], dict[int, str]]:
    """Every pending row (or those of `ids`) due at `now`, waiting retries included: the ids of
    the pending rows, and the state of each id asked for that is not pending ("" for none)."""
    query = select(outbox.c.id, outbox.c.state)
    query = query.where(outbox.c.state == PENDING if ids is None else outbox.c.id.in_(list(ids)))
    async with db.transaction() as conn:
        # Locked, so that a sender's claim waits for this instead of racing it.
        rows = list(await conn.execute(for_update(conn, query.order_by(outbox.c.id), of=outbox)))
        pending = [r.id for r in rows if r.state == PENDING]
        others = {r.id: str(r.state) for r in rows if r.state != PENDING}
        others.update((row_id, "") for row_id in set(ids or ()) - {r.id for r in rows})
        waiting = outbox.c.state == PENDING, outbox.c.next_attempt_at > now
        if ids is None:
            await conn.execute(update(outbox).where(*waiting).values(next_attempt_at=now))
        elif pending:
            await conn.execute(
                update(outbox).where(outbox.c.id.in_(pending), *waiting).values(next_attempt_at=now)
            )
    return pending, others


async def outcomes(conn: AsyncConnection, ids: Collection[int]) -> list[dict[str, Any]]:
    """State, Message-ID, each recipient's last relay answer, next attempt and claim holder of
    the rows `ids`, by id."""
    columns = (
        outbox.c.id, outbox.c.state, outbox.c.message_id, outbox.c.results,
        outbox.c.last_error, outbox.c.next_attempt_at, outbox.c.claimed_by,
    )  # fmt: skip
    found = []
    for row in await conn.execute(select(*columns).where(outbox.c.id.in_(list(ids)))):
        values = row._asdict()
        values["results"] = json.loads(values["results"]) if values["results"] else {}
        found.append(values)
    return sorted(found, key=lambda r: r["id"])
