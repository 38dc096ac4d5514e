"""The durable outbox: how stages enqueue mail and the outbox sender claims and settles it.

Place in the flow: whatever sends mail (auto-responses and agent relays in the postmaster's
apply transaction, later the web view and the scheduler) calls ``enqueue`` inside its own
transaction, so the mail exists exactly when the ticket change that caused it does; a
rollback leaves nothing to send. The sender (``outbound.sender``) then ``claim``s due rows in
a short transaction of its own — counting the attempt and leasing the rows, with ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL so that several senders and daemons share the queue, and under
SQLite's ``BEGIN IMMEDIATE`` write lock otherwise — and records each outcome with ``settle``:
sent, retry later, or failed for good (with Znuny's send-error row and a ticket history entry,
and hard-bounced addresses put on the suppression list).

Every update of a claimed row checks its claim token, so a sender whose lease ran out cannot
overwrite the outcome of the sender that took the row over.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import storable
from pytrs.schema.claims import lease_due
from pytrs.schema.database import Database, conflict_insert, for_update, utcnow
from pytrs.schema.inbox_repo import is_dead_local_process, process_identity
from pytrs.schema.tables import (
    address_suppression,
    article_data_mime_send_error,
    outbox,
    ticket,
    ticket_history,
)
from pytrs.vocabulary import znuny

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
# Per-recipient status in ``results``: delivered, refused for good, or to be tried again.
DELIVERED, REFUSED, RETRY = "sent", "failed", "retry"
MESSAGE_ID_MAX = 250


class Sendable(Protocol):
    """What ``enqueue`` needs; ``responders.message.Composed`` and ``OutboxMail`` have it."""

    @property
    def raw(self) -> bytes: ...
    @property
    def envelope_from(self) -> str: ...
    @property
    def recipients(self) -> Sequence[str]: ...
    @property
    def message_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A mail built elsewhere (e.g. an agent's message relayed as it is)."""

    raw: bytes
    envelope_from: str
    recipients: Sequence[str]
    message_id: str


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    """An outbox row leased to one sender; ``pending`` are the recipients still to try."""

    id: int
    ticket_id: int | None
    article_id: int | None
    kind: str
    envelope_from: str
    recipients: tuple[str, ...]
    results: Mapping[str, Mapping[str, str]]
    message_id: str
    raw: bytes = field(repr=False)
    attempts: int
    created_at: datetime
    claim_token: str

    @property
    def pending(self) -> tuple[str, ...]:
        final = (DELIVERED, REFUSED)
        return tuple(
            r for r in self.recipients if self.results.get(r, {}).get("status") not in final
        )


@dataclass(frozen=True, slots=True)
class Settlement:
    """The outcome of one delivery attempt for one claimed row (built by outbound.delivery).

    ``failed`` maps each recipient that failed for good in this attempt to why; ``suppress``
    those of them whose address does not exist (until ``suppress_until``).
    """

    mail: ClaimedMail
    state: str
    results: Mapping[str, Mapping[str, str]]
    next_attempt_at: datetime
    last_error: str | None = None
    failed: Mapping[str, str] = field(default_factory=dict)
    suppress: Mapping[str, str] = field(default_factory=dict)
    suppress_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Suppression:
    address: str
    reason: str
    until: datetime
    ticket_id: int | None


@dataclass(frozen=True, slots=True)
class Requeue:
    """What ``requeue_failed`` found for one row: its state before, whether it still has its
    bytes, and the recipients it will now be sent to (empty when it was not re-queued)."""

    id: int
    state: str
    kept_raw: bool
    recipients: tuple[str, ...] = ()

    @property
    def requeued(self) -> bool:
        return self.state == FAILED and self.kept_raw


@dataclass(frozen=True, slots=True)
class Queued:
    """One mail for `enqueue_many`, with what it belongs to."""

    mail: Sendable
    ticket_id: int | None = None
    article_id: int | None = None
    kind: str = "mail"


async def enqueue(
    conn: AsyncConnection,
    mail: Sendable,
    *,
    ticket_id: int | None = None,
    article_id: int | None = None,
    kind: str = "mail",
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Queue `mail` in the caller's transaction; returns the outbox row's id.

    Nothing is sent before the transaction commits; wake the sender afterwards (the daemon's
    ``wake_sender``), or it finds the row within ``[outbound] poll_interval_seconds``. Raises
    ValueError for a mail without recipients, bytes or Message-ID.
    """
    now = now or utcnow()
    row = _row(Queued(mail, ticket_id, article_id, kind), now, not_before or now)
    result = await conn.execute(outbox.insert().values(**row).returning(outbox.c.id))
    return int(result.scalar_one())


async def enqueue_many(
    conn: AsyncConnection, items: Sequence[Queued], *, now: datetime | None = None
) -> None:
    """`enqueue` for a batch in one statement (the postmaster answers a batch at a time).

    Raises ValueError for a bad entry before anything is written.
    """
    now = now or utcnow()
    rows = [_row(item, now, now) for item in items]
    if rows:
        await conn.execute(outbox.insert(), rows)


def _row(item: Queued, now: datetime, due: datetime) -> dict[str, Any]:
    mail = item.mail
    recipients = list(dict.fromkeys(mail.recipients))
    if not recipients or not mail.raw or not mail.message_id:
        raise ValueError("an outbox mail needs recipients, bytes and a Message-ID")
    if len(mail.message_id) > MESSAGE_ID_MAX:
        raise ValueError(f"Message-ID longer than {MESSAGE_ID_MAX} characters")
    return storable.row(outbox, {
        "ticket_id": item.ticket_id, "article_id": item.article_id, "kind": item.kind,
        "state": PENDING, "envelope_from": mail.envelope_from,
        "recipients": json.dumps(recipients), "message_id": mail.message_id, "raw": mail.raw,
        "size": len(mail.raw), "attempts": 0, "next_attempt_at": due, "created_at": now,
    })  # fmt: skip


def _due(now: datetime) -> Any:
    # A row left in "sending" past its lease belongs to a sender that died or hung.
    return or_(
        and_(outbox.c.state == PENDING, outbox.c.next_attempt_at <= now),
        and_(outbox.c.state == SENDING, outbox.c.lease_until <= now),
    )


async def claim(
    db: Database, limit: int, lease: timedelta, now: datetime | None = None, *,
    only: Collection[int] | None = None,
) -> list[ClaimedMail]:  # fmt: skip
    """Lease up to `limit` due rows to the caller (of `only` these ids, when given), oldest
    first, counting an attempt each."""
    now = now or utcnow()
    token = secrets.token_hex(8)
    due = _due(now) if only is None else and_(_due(now), outbox.c.id.in_(list(only)))
    async with db.transaction() as conn:
        ids, _size = await lease_due(
            conn, outbox, due, limit,
            {"state": SENDING, "attempts": outbox.c.attempts + 1, "claim_token": token,
             "claimed_by": process_identity(), "lease_until": now + lease},
        )  # fmt: skip
        if not ids:
            return []
        rows = await conn.execute(select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id))
        return [_claimed(row, token) for row in rows]


def _claimed(row: Any, token: str) -> ClaimedMail:
    return ClaimedMail(
        id=row.id, ticket_id=row.ticket_id, article_id=row.article_id, kind=row.kind,
        envelope_from=row.envelope_from, recipients=tuple(json.loads(row.recipients)),
        results=json.loads(row.results) if row.results else {}, message_id=row.message_id,
        raw=row.raw or b"", attempts=row.attempts, created_at=row.created_at, claim_token=token,
    )  # fmt: skip


async def release(
    db: Database, mails: Sequence[ClaimedMail], delay: timedelta = timedelta(0)
) -> int:
    """Give claimed rows that were not tried back to the queue, without counting the attempt."""
    if not mails:
        return 0
    async with db.transaction() as conn:
        result = await conn.execute(
            update(outbox)
            .where(
                outbox.c.id.in_([m.id for m in mails]),
                outbox.c.claim_token.in_({m.claim_token for m in mails}),
                outbox.c.state == SENDING,
            )
            .values(
                state=PENDING, attempts=outbox.c.attempts - 1, next_attempt_at=utcnow() + delay,
                claim_token=None, lease_until=None,
            )
        )  # fmt: skip
        return int(result.rowcount or 0)


async def release_dead_claims(db: Database) -> int:
    """Rows leased to processes of this host that no longer run are due again at once.

    A sender killed with -9 leaves its rows in "sending"; other hosts' leases still run out on
    their own. Such a row may already have reached the relay (the documented window of a crash
    between the relay's 250 and our commit), so it is sent again: at-least-once at that point.
    """
    async with db.transaction() as conn:
        owners = (
            await conn.execute(
                select(outbox.c.claimed_by).where(outbox.c.state == SENDING).distinct()
            )
        ).scalars()
        dead = [o for o in owners if o and is_dead_local_process(o)]
        if not dead:
            return 0
        result = await conn.execute(
            update(outbox)
            .where(outbox.c.state == SENDING, outbox.c.claimed_by.in_(dead))
            .values(state=PENDING, claim_token=None, lease_until=None, next_attempt_at=utcnow())
        )
        return int(result.rowcount or 0)


async def settle(db: Database, settlements: Sequence[Settlement]) -> list[int]:
    """Record outcomes in one transaction; returns the ids whose claim was no longer ours.

    Mail that failed for good gets Znuny's send-error row on its article and a ``Misc`` entry
    in its ticket's history; addresses that do not exist go on the suppression list.
    """
    stale: list[int] = []
    if not settlements:
        return stale
    now = utcnow()
    async with db.transaction() as conn:
        for item in settlements:
            if not await _update_row(conn, item, now):
                stale.append(item.mail.id)
                continue
            if item.failed:
                await _record_failure(conn, item, now)
            if item.suppress and item.suppress_until is not None:
                for address, reason in item.suppress.items():
                    await suppress(
                        conn, address, reason, item.suppress_until, item.mail.ticket_id, now
                    )
    return stale


async def _update_row(conn: AsyncConnection, item: Settlement, now: datetime) -> bool:
    mail = item.mail
    values: dict[str, Any] = {
        "state": item.state, "results": json.dumps(item.results, sort_keys=True),
        "next_attempt_at": item.next_attempt_at, "last_error": item.last_error,
        "claim_token": None, "lease_until": None,
    }  # fmt: skip
    if item.state == SENT:
        # The article keeps its own copy; the row stays for threading and bounce matching.
        values.update(sent_at=now, raw=None)
    result = await conn.execute(
        update(outbox)
        .where(
            outbox.c.id == mail.id,
            outbox.c.claim_token == mail.claim_token,
            outbox.c.state == SENDING,
        )
        # last_error is the relay's reply text, the remote side's words: made storable.
        .values(**storable.row(outbox, values))
    )
    return bool(result.rowcount)


async def _record_failure(conn: AsyncConnection, item: Settlement, now: datetime) -> None:
    mail = item.mail
    lines = [f"{address}: {reason}" for address, reason in item.failed.items()]
    if mail.article_id is not None:
        await conn.execute(
            article_data_mime_send_error.insert().values(
                # The relay's reply text is the remote side's words: made storable like mail.
                storable.row(
                    article_data_mime_send_error,
                    {
                        "article_id": mail.article_id,
                        "message_id": mail.message_id,
                        "log_message": "\n".join(lines),
                        "create_time": now,
                    },
                )
            )
        )
    if mail.ticket_id is None:
        return
    found = (
        await conn.execute(
            select(
                ticket.c.queue_id, ticket.c.user_id, ticket.c.ticket_priority_id,
                ticket.c.ticket_state_id, ticket.c.type_id,
            ).where(ticket.c.id == mail.ticket_id)
        )
    ).first()  # fmt: skip
    if found is None:
        return
    # Znuny's "Bounce" history type is an agent bouncing a mail on; a delivery failure is Misc.
    name = storable.value(ticket_history.c.name, f"Mail not delivered to {'; '.join(lines)}")
    await conn.execute(
        ticket_history.insert().values(
            name=name, history_type_id=znuny.history_type_id("Misc"),
            ticket_id=mail.ticket_id, article_id=mail.article_id, type_id=found.type_id,
            queue_id=found.queue_id, owner_id=found.user_id,
            priority_id=found.ticket_priority_id, state_id=found.ticket_state_id,
            create_time=now, create_by=znuny.USER_ROOT, change_time=now, change_by=znuny.USER_ROOT,
        )
    )  # fmt: skip


async def suppress(
    conn: AsyncConnection,
    address: str,
    reason: str,
    until: datetime,
    ticket_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """Put `address` on the suppression list until `until` (extending an existing entry)."""
    now = now or utcnow()
    insert = conflict_insert(conn, address_suppression).values(
        address=_suppression_key(address), reason=storable.cut(storable.clean(reason), 2000),
        suppressed_until=until, ticket_id=ticket_id, created_at=now,
    )  # fmt: skip
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=["address"],
            set_={
                "reason": insert.excluded.reason,
                "suppressed_until": insert.excluded.suppressed_until,
                "ticket_id": insert.excluded.ticket_id,
                "created_at": insert.excluded.created_at,
            },
        )
    )


def _suppression_key(address: str) -> str:
    """`address` as the suppression list's key holds it (lower-cased, storable)."""
    return storable.value(address_suppression.c.address, address.lower())


async def suppressed(
    conn: AsyncConnection, addresses: Collection[str], now: datetime | None = None
) -> dict[str, Suppression]:
    """The active suppressions among `addresses`, by lower-cased address."""
    if not addresses:
        return {}
    now = now or utcnow()
    keys = {_suppression_key(a): a.lower() for a in addresses}
    rows = await conn.execute(
        select(address_suppression).where(
            address_suppression.c.address.in_(keys),
            address_suppression.c.suppressed_until > now,
        )
    )
    return {
        keys[r.address]: Suppression(keys[r.address], r.reason, r.suppressed_until, r.ticket_id)
        for r in rows
    }


async def lift_suppression(conn: AsyncConnection, address: str) -> bool:
    """Remove `address` from the suppression list; whether it was on it."""
    result = await conn.execute(
        address_suppression.delete().where(address_suppression.c.address == address.lower())
    )
    return bool(result.rowcount)


async def active_suppressions(
    conn: AsyncConnection,
    now: datetime | None = None,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> list[Suppression]:
    """Every suppression still in force, by address; or a page of them: at most `limit`,
    addresses after `after`."""
    query = select(address_suppression).where(
        address_suppression.c.suppressed_until > (now or utcnow())
    )
    if after is not None:
        query = query.where(address_suppression.c.address > after)
    rows = await conn.execute(query.order_by(address_suppression.c.address).limit(limit))
    return [Suppression(r.address, r.reason, r.suppressed_until, r.ticket_id) for r in rows]


async def requeue_failed(
    db: Database, ids: Collection[int] | None = None, now: datetime | None = None
) -> list[Requeue]:
    """Put failed rows (all, or `ids`) back in the queue, due now; returns one entry per row found.

    Recipients refused for good are tried again; a failed row has none that accepted it, and
    were there any they would stay delivered, so nobody gets the mail twice. Rows in other
    states and failed rows whose bytes are gone are left as they are. The retry horizon
    (``[outbound] max_retry_hours``) still counts from the row's creation, so an older row gets
    one attempt: accepted, or failed again.
    """
    now = now or utcnow()
    kept_raw = outbox.c.raw.is_not(None).label("kept_raw")
    query = select(outbox.c.id, outbox.c.state, outbox.c.recipients, outbox.c.results, kept_raw)
    query = query.where(outbox.c.state == FAILED if ids is None else outbox.c.id.in_(list(ids)))
    found: list[Requeue] = []
    async with db.transaction() as conn:
        query = for_update(conn, query.order_by(outbox.c.id), of=outbox)
        for row in list(await conn.execute(query)):
            outcome = Requeue(row.id, row.state, bool(row.kept_raw))
            if outcome.requeued:
                outcome = await _requeue(conn, row, now)
            found.append(outcome)
    return found


async def _requeue(conn: AsyncConnection, row: Any, now: datetime) -> Requeue:
    results = json.loads(row.results) if row.results else {}
    again = tuple(
        r for r in json.loads(row.recipients) if results.get(r, {}).get("status") != DELIVERED
    )
    for recipient in again:
        # The last reply stays: it is what a later "gave up" names as the last answer.
        results[recipient] = {**results.get(recipient, {}), "status": RETRY}
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == row.id, outbox.c.state == FAILED)
        .values(state=PENDING, results=json.dumps(results, sort_keys=True), next_attempt_at=now)
    )
    return Requeue(row.id, FAILED, True, again)


async def find_by_message_ids(
    conn: AsyncConnection, message_ids: Collection[str]
) -> dict[str, tuple[int | None, int | None]]:
    """(ticket id, article id) of our own mail by Message-ID: threading and bounce matching."""
    if not message_ids:
        return {}
    # A referenced id we could never have stored (a NUL, too long) would fail the query.
    storable_ids = [m for m in message_ids if storable.problem(outbox.c.message_id, m) is None]
    if not storable_ids:
        return {}
    rows = await conn.execute(
        select(outbox.c.message_id, outbox.c.ticket_id, outbox.c.article_id).where(
            outbox.c.message_id.in_(storable_ids)
        )
    )
    return {r.message_id: (r.ticket_id, r.article_id) for r in rows}


async def next_due(db: Database) -> datetime | None:
    """When the earliest queued or leased row becomes due (None when there is none)."""
    async with db.connect() as conn:
        pending = select(func.min(outbox.c.next_attempt_at)).where(outbox.c.state == PENDING)
        leased = select(func.min(outbox.c.lease_until)).where(outbox.c.state == SENDING)
        times = [(await conn.execute(q)).scalar_one() for q in (pending, leased)]
    found = [t for t in times if t is not None]
    return min(found) if found else None


async def counts(db: Database) -> dict[str, int]:
    """Rows per state."""
    async with db.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.state, func.count()).select_from(outbox).group_by(outbox.c.state)
        )
        return {state: int(n) for state, n in rows}
