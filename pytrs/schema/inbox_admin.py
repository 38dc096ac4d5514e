"""The inbox as operators see it (`pytrs inbox list|show|retry|discard|replace`): read-mostly
queries, and the few changes an operator makes to the quarantine.

Place in the flow: beside ``inbox_repo`` (which the gateway and the postmaster use); these
queries join what an operator needs to recognise a mail — its ticket number, and its From and
Subject, kept in the article once the inbox row has given up its raw copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema.database import Database, for_update, utcnow
from pytrs.schema.inbox_repo import DISCARDED, PENDING, QUARANTINED, dedup_key
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import article_data_mime, article_data_mime_plain, inbox, ticket, users

# Enough of a raw message to hold its header; the listing never reads whole messages.
HEAD_BYTES = 16384
# Who discarded a row, by login (the row keeps the users.id).
_DISCARDER = users.c.login.label("discarded_by_login")


async def listing(
    conn: AsyncConnection, state: str, limit: int, *, before: int | None = None
) -> list[dict[str, Any]]:
    """Newest rows first, each with `tn`, the article's `a_from`/`a_subject` when processed,
    and `head`, the start of the raw message while the row still holds it; with `before`, only
    rows of a smaller id (the next page of a listing that ended at that id)."""
    query = (
        select(
            inbox.c.id, inbox.c.state, inbox.c.source, inbox.c.recipient, inbox.c.message_id,
            inbox.c.attempts, inbox.c.received_at, inbox.c.ticket_id, ticket.c.tn,
            inbox.c.last_error, article_data_mime.c.a_from, article_data_mime.c.a_subject,
            func.substr(inbox.c.raw, 1, HEAD_BYTES).label("head"),
            inbox.c.discard_reason, inbox.c.discarded_at, _DISCARDER,
        )
        .outerjoin(ticket, ticket.c.id == inbox.c.ticket_id)
        .outerjoin(users, users.c.id == inbox.c.discarded_by)
        .outerjoin(article_data_mime, article_data_mime.c.article_id == inbox.c.article_id)
        .order_by(inbox.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    if state != "all":
        query = query.where(inbox.c.state == state)
    if before is not None:
        query = query.where(inbox.c.id < before)
    return [row._asdict() for row in await conn.execute(query)]


# Who replaced a row's mail last, by login.
_REPLACERS = users.alias("replacers")
_ROW = (
    select(
        *(c for c in inbox.c if c.name != "original_raw"),
        _DISCARDER,
        _REPLACERS.c.login.label("replaced_by_login"),
        func.length(inbox.c.original_raw).label("original_size"),
    )
    .outerjoin(users, users.c.id == inbox.c.discarded_by)
    .outerjoin(_REPLACERS, _REPLACERS.c.id == inbox.c.replaced_by)
)


async def row(conn: AsyncConnection, row_id: int) -> dict[str, Any] | None:
    """Every column of the row but `original_raw` (`original_size` says how big it is, None
    when the mail was never replaced), `discarded_by_login` and `replaced_by_login`."""
    found = (await conn.execute(_ROW.where(inbox.c.id == row_id))).first()
    return None if found is None else found._asdict()


async def original_raw(conn: AsyncConnection, row_id: int) -> bytes | None:
    """The mail as received, kept when an operator replaced it by a corrected copy; None
    when the row was never replaced (or does not exist)."""
    query = select(inbox.c.original_raw).where(inbox.c.id == row_id)
    return (await conn.execute(query)).scalar_one_or_none()


async def ticket_number(conn: AsyncConnection, ticket_id: int | None) -> str | None:
    """The number of the ticket a processed row went to, or None."""
    if ticket_id is None:
        return None
    found = await conn.scalar(select(ticket.c.tn).where(ticket.c.id == ticket_id))
    return None if found is None else str(found)


async def article_raw(conn: AsyncConnection, article_id: int) -> bytes | None:
    """The raw copy the article keeps (``article_data_mime_plain``) once the inbox row drops it."""
    query = select(article_data_mime_plain.c.body).where(
        article_data_mime_plain.c.article_id == article_id
    )
    found = (await conn.execute(query)).scalar_one_or_none()
    return shape_of(conn).stored_bytes("article_data_mime_plain", "body", found)


async def requeue(db: Database, ids: Sequence[int] | None) -> dict[int, str]:
    """Put quarantined rows (all, or those of `ids`) back in the queue with a fresh attempt
    budget. Returns the state each row had before, so that a caller can say why a row it
    named was left alone; ids with no row are missing from the answer."""
    found = select(inbox.c.id, inbox.c.state)
    if ids is None:
        found = found.where(inbox.c.state == QUARANTINED)
    else:
        found = found.where(inbox.c.id.in_(list(ids)))
    async with db.transaction() as conn:
        states = {r.id: r.state for r in await conn.execute(found)}
        chosen = [row_id for row_id, state in states.items() if state == QUARANTINED]
        if chosen:
            where = [inbox.c.state == QUARANTINED]
            if ids is not None:  # --all updates by state alone: no list of thousands of ids
                where.append(inbox.c.id.in_(chosen))
            fresh = {"state": PENDING, "attempts": 0, "next_attempt_at": utcnow()}
            await conn.execute(update(inbox).where(*where).values(**fresh))
    return states


async def discard(db: Database, ids: Sequence[int], reason: str, by: int) -> dict[int, str]:
    """Set quarantined rows aside for good (state ``discarded``), keeping `reason`, who (`by`,
    a users.id) and when in the row. The raw copy, the error and the row itself stay, so a
    re-delivery of the same mail is still recognised as one. Returns the state each row had
    before (ids with no row are missing); only quarantined rows change."""
    wanted = list(dict.fromkeys(ids))
    async with db.transaction() as conn:
        found = select(inbox.c.id, inbox.c.state).where(inbox.c.id.in_(wanted))
        states = {r.id: r.state for r in await conn.execute(found)}
        chosen = [row_id for row_id, state in states.items() if state == QUARANTINED]
        if chosen:
            now = utcnow()
            await conn.execute(
                update(inbox)
                .where(inbox.c.id.in_(chosen), inbox.c.state == QUARANTINED)
                .values(
                    state=DISCARDED, discard_reason=reason, discarded_by=by, discarded_at=now,
                    processed_at=now,
                )
            )  # fmt: skip
    return states


async def replace(db: Database, row_id: int, raw: bytes, by: int) -> str | None:
    """Queue the corrected copy `raw` of a quarantined row in place of its mail: pending, a
    fresh attempt budget, due now. The mail as received moves to `original_raw` the first time
    only (a second correction keeps the first original); `by` (a users.id) and the time are
    kept as `replaced_by`/`replaced_at`. Returns the state the row had before (None: no row);
    only a quarantined row changes.

    The row keeps its `dedup_key`, the key of the mail as received: it is what the gateway
    will meet again if the sender re-delivers the broken mail, and that re-delivery must stay
    a no-op rather than a second quarantined row (or a second ticket once the copy is in). A
    key computed from the copy could also collide with another row of the same source and
    recipient under the unique constraint. The copy is not taken for a duplicate of itself:
    routing's same-mail lookup passes over the batch's own rows. `message_id` follows the copy,
    whose Message-ID the article will carry and later mail may refer to.
    """
    message_id, _key = dedup_key(raw)
    async with db.transaction() as conn:
        query = select(inbox.c.state).where(inbox.c.id == row_id)
        before = (await conn.execute(for_update(conn, query))).scalar_one_or_none()
        if before != QUARANTINED:
            return before
        await conn.execute(
            update(inbox)
            .where(inbox.c.id == row_id, inbox.c.state == QUARANTINED)
            .values(
                # SET reads the row as it was: the first replace moves the received mail.
                original_raw=func.coalesce(inbox.c.original_raw, inbox.c.raw),
                raw=raw, size=len(raw), message_id=message_id, state=PENDING, attempts=0,
                next_attempt_at=utcnow(), claim_token=None, replaced_by=by, replaced_at=utcnow(),
            )
        )  # fmt: skip
    return before
