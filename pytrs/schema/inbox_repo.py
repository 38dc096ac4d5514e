"""The durable inbox: how the gateway stores accepted mail and the postmaster worker claims it.

Rows are written by every ingress path (SMTP/LMTP, pipe, fetchers) and consumed by the
postmaster worker. Claiming is a short transaction of its own that counts the attempt and sets a
lease (``next_attempt_at``), so a message that kills the worker is still counted and ends in the
quarantine instead of looping; on PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED`` so
several workers and daemons share the work without waiting on each other.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import storable
from pytrs.schema.claims import lease_due
from pytrs.schema.database import Database, conflict_insert, for_update, utcnow
from pytrs.schema.tables import inbox
from pytrs.vocabulary.inbox import InboxItem

PENDING, DONE, IGNORED, QUARANTINED = "pending", "done", "ignored", "quarantined"
# A further copy of a mail already stored (sent to several system addresses of one queue):
# processed, its raw kept, ticket_id/article_id pointing at the stored copy.
DUPLICATE = "duplicate"
# A quarantined mail an operator set aside for good (`inbox_admin.discard`), with the why,
# who and when in `discard_reason`, `discarded_by`, `discarded_at`.
DISCARDED = "discarded"

_HEADER_END = re.compile(rb"\r?\n\r?\n")
# The dedup key hashes the mail this many bytes at a time.
_HASH_SLICE = 1024 * 1024
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def with_keys(items: Sequence[InboxItem]) -> list[InboxItem]:
    """`items` with their dedup keys computed, once per distinct raw message (the copies of one
    mail for several recipients share the bytes). Hashing a 25 MB mail takes tens of
    milliseconds: callers on an event loop run this in a thread, outside any transaction."""
    keys: dict[int, tuple[str, str]] = {}
    keyed = []
    for item in items:
        if item.key is None:
            if id(item.raw) not in keys:
                keys[id(item.raw)] = dedup_key(item.raw)
            item = replace(item, key=keys[id(item.raw)])
        keyed.append(item)
    return keyed


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    raw: bytes
    source: str
    recipient: str
    envelope_from: str
    trusted: bool
    queue_name: str
    attempts: int
    claim_token: str
    dedup_key: str = ""
    received_at: datetime | None = None  # when the gateway committed it (processing latency)


def dedup_key(raw: bytes) -> tuple[str, str]:
    """(Message-ID, key) identifying "the same message" across re-deliveries.

    MTAs add trace headers (Received, Delivered-To …) on every delivery, so the key is the
    Message-ID plus the body, not the whole message. Without a Message-ID the whole message is
    hashed, the best we can do.
    """
    match = _HEADER_END.search(raw)
    head_end, body_start = (match.start(), match.end()) if match else (len(raw), len(raw))
    found = _MESSAGE_ID.search(raw, 0, head_end)
    message_id = b"".join(found.group(1).split()) if found else b""
    digest = hashlib.sha256()
    if message_id:
        digest.update(message_id)
        digest.update(b"\0")
        _hash_unix_lines(digest, raw, body_start, strip=True)
    else:
        _hash_unix_lines(digest, raw, 0, strip=False)
    return stored_message_id(message_id.decode("utf-8", "replace")), digest.hexdigest()


def stored_message_id(message_id: str) -> str:
    """A Message-ID as the inbox's message_id column holds it (cleaned and cut), for lookups."""
    return storable.value(inbox.c.message_id, message_id)


def _hash_unix_lines(digest: Any, raw: bytes, start: int, *, strip: bool) -> None:
    """Hash `raw[start:]` with CRLF as LF (and, with `strip`, without trailing line ends),
    a slice at a time: the key must not cost copies of a 25 MB mail."""
    end = len(raw)
    while strip and end > start:
        if raw.endswith(b"\r\n", start, end):
            end -= 2
        elif raw.endswith(b"\n", start, end):
            end -= 1
        else:
            break
    view = memoryview(raw)
    while start < end:
        stop = min(start + _HASH_SLICE, end)
        while stop < end and raw[stop - 1] == 0x0D:
            stop += 1  # never split a CRLF between two slices
        digest.update(view[start:stop].tobytes().replace(b"\r\n", b"\n"))
        start = stop


def _insert_ignoring_duplicates(conn: AsyncConnection) -> Any:
    return conflict_insert(conn, inbox).on_conflict_do_nothing(
        index_elements=["source", "recipient", "dedup_key"]
    )


async def store(conn: AsyncConnection, items: Sequence[InboxItem]) -> list[int]:
    """Insert `items` in the caller's transaction; returns their inbox ids, in order.

    An identical re-delivery is kept once: its id is the stored row's. Every text value is made
    storable first (NUL stripped, bad UTF-8 replaced, cut to the column), so a hostile envelope
    or Message-ID cannot fail the transaction; the raw bytes are stored as they came.
    """
    now = utcnow()
    rows = []
    for item in items:
        message_id, key = item.key or dedup_key(item.raw)
        values = {
            "source": item.source, "recipient": item.recipient,
            "envelope_from": item.envelope_from, "peer": item.peer,
            "trusted": int(item.trusted), "queue_name": item.queue_name,
            "message_id": message_id, "dedup_key": key, "size": len(item.raw), "raw": item.raw,
            "state": PENDING, "attempts": 0, "next_attempt_at": now, "received_at": now,
        }  # fmt: skip
        rows.append(storable.row(inbox, values))
    if not rows:
        return []
    # executemany, not one multi-row INSERT … RETURNING: SQLite binds a row at a time, and a
    # cached statement keeps only its last row's values, not the whole batch's mail.
    await conn.execute(_insert_ignoring_duplicates(conn), rows)
    return await _ids_of(conn, rows)


async def _ids_of(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[int]:
    # Read back by the unique key: a re-delivery inserts nothing, yet its sender is told the
    # id of the row that holds the mail.
    found = await conn.execute(
        select(inbox.c.id, inbox.c.source, inbox.c.recipient, inbox.c.dedup_key).where(
            inbox.c.dedup_key.in_({r["dedup_key"] for r in rows})
        )
    )
    ids = {(r.source, r.recipient, r.dedup_key): int(r.id) for r in found}
    return [ids[(r["source"], r["recipient"], r["dedup_key"])] for r in rows]


def process_identity() -> str:
    """Who holds a claim: host and pid, so a restarted daemon can free its dead twin's claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def claim(
    db: Database, limit: int, lease: timedelta, now: datetime | None = None, *,
    max_bytes: int = 0,
) -> list[ClaimedMessage]:  # fmt: skip
    """Claim up to `limit` due pending rows, together at most `max_bytes` of mail (but at
    least one row): count the attempt and lease them to this caller."""
    leased = await lease_rows(db, limit, lease, now, max_bytes=max_bytes)
    return await load_leased(db, leased) if leased is not None else []


@dataclass(frozen=True, slots=True)
class Leased:
    """Rows leased to this caller, their mail not loaded yet: `size` says how big it is."""

    ids: list[int]
    token: str
    size: int


async def lease_rows(
    db: Database, limit: int, lease: timedelta, now: datetime | None = None, *,
    max_bytes: int = 0,
) -> Leased | None:  # fmt: skip
    """The first half of `claim`: lease the rows and count the attempt, in one short
    transaction; None when nothing is due. A caller may wait between the halves (for memory)
    without holding a connection."""
    now = now or utcnow()
    token = secrets.token_hex(8)
    due = and_(inbox.c.state == PENDING, inbox.c.next_attempt_at <= now)
    async with db.transaction() as conn:
        ids = await lease_due(
            conn, inbox, due, limit,
            {"attempts": inbox.c.attempts + 1, "next_attempt_at": now + lease,
             "claim_token": token, "claimed_by": process_identity()},
            max_bytes=max_bytes,
        )  # fmt: skip
        if not ids:
            return None
        sizes = await conn.execute(select(inbox.c.size).where(inbox.c.id.in_(ids)))
        return Leased(ids, token, sum(size or 0 for (size,) in sizes))


async def load_leased(db: Database, leased: Leased) -> list[ClaimedMessage]:
    """The second half of `claim`: the leased rows with their mail."""
    async with db.connect() as conn:
        rows = await conn.execute(
            select(
                inbox.c.id, inbox.c.raw, inbox.c.source, inbox.c.recipient,
                inbox.c.envelope_from, inbox.c.trusted, inbox.c.queue_name, inbox.c.attempts,
                inbox.c.dedup_key, inbox.c.received_at,
            )
            .where(inbox.c.id.in_(leased.ids))
            .order_by(inbox.c.id)
        )  # fmt: skip
        return [
            ClaimedMessage(
                r.id, r.raw or b"", r.source, r.recipient, r.envelope_from,
                bool(r.trusted), r.queue_name, r.attempts, leased.token, r.dedup_key,
                r.received_at,
            )
            for r in rows
        ]  # fmt: skip


async def release_dead_claims(db: Database) -> int:
    """Make rows claimed by processes of this host that no longer exist due again at once.

    A daemon killed with -9 leaves its claims leased; waiting for the lease to run out would
    delay that mail by minutes after a restart. Claims of other hosts still wait for the lease.
    """
    host = socket.gethostname()
    async with db.transaction() as conn:
        owners = (
            await conn.execute(
                select(inbox.c.claimed_by)
                .where(inbox.c.state == PENDING, inbox.c.claim_token.is_not(None))
                .distinct()
            )
        ).scalars()
        dead = [o for o in owners if o and _is_dead_local_process(o, host)]
        if not dead:
            return 0
        result = await conn.execute(
            update(inbox)
            .where(inbox.c.state == PENDING, inbox.c.claimed_by.in_(dead))
            .values(claim_token=None, next_attempt_at=utcnow())
        )
        return int(result.rowcount or 0)


def is_dead_local_process(owner: str, host: str | None = None) -> bool:
    """Whether `owner` ("host:pid") names a process of this host that no longer runs."""
    return _is_dead_local_process(owner, host or socket.gethostname())


def _is_dead_local_process(owner: str, host: str) -> bool:
    owner_host, _, pid_text = owner.rpartition(":")
    if owner_host != host or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def lock_claimed(conn: AsyncConnection, ids: Sequence[int], token: str) -> set[int]:
    """Inside the processing transaction: the ids this claim still owns, locked on PostgreSQL.

    A lease that ran out (a very slow worker) may have been re-claimed by another worker; only
    the rows whose token is still ours are processed, so a message is never applied twice.
    """
    query = select(inbox.c.id).where(inbox.c.id.in_(ids), inbox.c.claim_token == token)
    return set((await conn.execute(for_update(conn, query))).scalars())


async def mark_processed(
    conn: AsyncConnection, results: Sequence[dict[str, Any]], now: datetime | None = None
) -> None:
    """Record outcomes (`id`, `state`, `ticket_id`, `article_id`, `trace`) and drop raw copies.

    The article keeps the raw message; the row stays (without it) for deduplication.
    """
    if not results:
        return
    now = now or utcnow()
    rows = [
        {
            "b_id": r["id"], "b_state": r["state"], "b_ticket_id": r.get("ticket_id"),
            "b_article_id": r.get("article_id"), "b_trace": r.get("trace"),
            "b_keep_raw": r["state"] != DONE,
        }
        for r in results
    ]  # fmt: skip
    await conn.execute(
        update(inbox)
        .where(inbox.c.id == bindparam("b_id"))
        .values(
            state=bindparam("b_state"),
            ticket_id=bindparam("b_ticket_id"),
            article_id=bindparam("b_article_id"),
            trace=bindparam("b_trace"),
            processed_at=now,
            claim_token=None,
            last_error=None,
            raw=case((bindparam("b_keep_raw"), inbox.c.raw), else_=None),
        ),
        rows,
    )


@dataclass(frozen=True, slots=True)
class InFlight:
    """What a batch depends on that is still in the inbox, pending or claimed by another
    worker and not committed yet: referenced Message-IDs (as the column holds them) and, per
    dedup key, the lowest id of a copy of the same mail."""

    message_ids: frozenset[str] = frozenset()
    first_copies: dict[str, int] = field(default_factory=dict)


async def in_flight(
    conn: AsyncConnection, *, message_ids: Collection[str], keys: Collection[str],
    exclude: Collection[int],
) -> InFlight:  # fmt: skip
    """Which of `message_ids` and `keys` belong to pending rows outside `exclude` (the batch),
    in one query.

    Read it before the batch looks up stored articles and copies: a row is pending until the
    commit that stores its article, so whatever is not pending here is visible to every later
    statement. (Read after them, a batch that commits in between on PostgreSQL, where each
    statement sees what was committed when it began, would be in neither read.)
    """
    wanted = {stored_message_id(m) for m in message_ids}
    keys = set(keys)
    if not wanted and not keys:
        return InFlight()
    rows = await conn.execute(
        select(inbox.c.id, inbox.c.message_id, inbox.c.dedup_key).where(
            inbox.c.state == PENDING,
            inbox.c.id.not_in(list(exclude)),
            or_(inbox.c.message_id.in_(wanted), inbox.c.dedup_key.in_(keys)),
        )
    )
    pending: set[str] = set()
    first_copies: dict[str, int] = {}
    for row_id, message_id, key in rows:
        if message_id in wanted:
            pending.add(message_id)
        # One mail delivered to several system addresses is several rows with one dedup key;
        # the lowest id is routed first, and later copies wait for it (`routing._same_mail`).
        if key in keys and row_id < first_copies.get(key, row_id + 1):
            first_copies[key] = row_id
    return InFlight(frozenset(pending), first_copies)


async def defer(db: Database, messages: Sequence[ClaimedMessage], delay: timedelta) -> None:
    """Give claimed rows back for a later try without counting the attempt."""
    async with db.transaction() as conn:
        await conn.execute(
            update(inbox)
            .where(
                inbox.c.id.in_([m.id for m in messages]),
                inbox.c.claim_token == messages[0].claim_token,
            )
            .values(
                attempts=inbox.c.attempts - 1,
                next_attempt_at=utcnow() + delay,
                claim_token=None,
            )
        )


async def record_failure(
    db: Database, message: ClaimedMessage, error: str, max_attempts: int, backoff: timedelta
) -> str:
    """Schedule a retry with exponential backoff, or quarantine after `max_attempts`."""
    now = utcnow()
    quarantine = message.attempts >= max_attempts
    delay = backoff * (2 ** max(message.attempts - 1, 0))
    async with db.transaction() as conn:
        await conn.execute(
            update(inbox)
            .where(inbox.c.id == message.id, inbox.c.claim_token == message.claim_token)
            .values(
                state=QUARANTINED if quarantine else PENDING,
                next_attempt_at=now if quarantine else now + delay,
                last_error=error[:8000],
                claim_token=None,
            )
        )
    return QUARANTINED if quarantine else PENDING


async def retry(db: Database, ids: Sequence[int] | None = None) -> int:
    """Put quarantined rows (all, or `ids`) back in the queue with a fresh attempt budget."""
    cond = inbox.c.state == QUARANTINED
    if ids:
        cond = and_(cond, inbox.c.id.in_(list(ids)))
    async with db.transaction() as conn:
        result = await conn.execute(
            update(inbox).where(cond).values(state=PENDING, attempts=0, next_attempt_at=utcnow())
        )
        return int(result.rowcount or 0)


async def pending_count(db: Database) -> int:
    async with db.connect() as conn:
        query = select(func.count()).select_from(inbox).where(inbox.c.state == PENDING)
        return int((await conn.execute(query)).scalar_one())


async def next_due(db: Database) -> datetime | None:
    """When the earliest pending row becomes due (None when nothing is pending)."""
    async with db.connect() as conn:
        query = select(func.min(inbox.c.next_attempt_at)).where(inbox.c.state == PENDING)
        return (await conn.execute(query)).scalar_one()
