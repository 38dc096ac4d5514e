"""What the ops endpoints read from the database: queue depths for `/metrics`, a ping for
`/readyz`, the figures of systemd's STATUS= line.

Place in the flow: `metrics.exposition` calls `depths` at each scrape, so that every daemon
sharing the database reports the same numbers, `web.ops` calls `ping`, and the daemon's
watchdog (`metrics.status`) calls `status_figures` every few seconds. Only rows still
in play are counted (pending and quarantined mail, unsent outbox rows), through the
(state, next_attempt_at) indexes: the processed rows that pile up over the years are never
scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import inbox_repo, outbox_repo
from pytrs.schema.tables import inbox, mailbox_state, outbox

INBOX_STATES = (inbox_repo.PENDING, inbox_repo.QUARANTINED)
OUTBOX_STATES = (outbox_repo.PENDING, outbox_repo.SENDING, outbox_repo.FAILED)


@dataclass(slots=True)
class Depths:
    """Rows per state and the oldest one's time (None when the state has no row)."""

    inbox: dict[str, int] = field(default_factory=dict)
    inbox_oldest: dict[str, datetime | None] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    outbox_oldest: datetime | None = None
    # mail account name → its last successful fetch pass (None: never)
    fetched_at: dict[str, datetime | None] = field(default_factory=dict)


async def depths(conn: AsyncConnection) -> Depths:
    """The inbox, outbox and mail account figures of one scrape."""
    found = Depths(
        inbox=dict.fromkeys(INBOX_STATES, 0),
        inbox_oldest=dict.fromkeys(INBOX_STATES),
        outbox=dict.fromkeys(OUTBOX_STATES, 0),
    )
    rows = await conn.execute(
        select(inbox.c.state, func.count(), func.min(inbox.c.received_at))
        .where(inbox.c.state.in_(INBOX_STATES))
        .group_by(inbox.c.state)
    )
    for state, count, oldest in rows:
        found.inbox[state], found.inbox_oldest[state] = int(count), oldest
    rows = await conn.execute(
        select(outbox.c.state, func.count())
        .where(outbox.c.state.in_(OUTBOX_STATES))
        .group_by(outbox.c.state)
    )
    found.outbox.update((state, int(count)) for state, count in rows)
    found.outbox_oldest = (
        await conn.execute(
            select(func.min(outbox.c.created_at)).where(outbox.c.state == outbox_repo.PENDING)
        )
    ).scalar_one()
    rows = await conn.execute(select(mailbox_state.c.account, mailbox_state.c.last_success_at))
    found.fetched_at = {str(account): at for account, at in rows}
    return found


@dataclass(slots=True)
class StatusFigures:
    """Rows in play and the health of some mail accounts, as systemd's STATUS= shows them."""

    inbox: dict[str, int] = field(default_factory=dict)  # pending, quarantined
    outbox: dict[str, int] = field(default_factory=dict)  # pending, sending, failed
    outbox_deferred: int = 0  # pending rows waiting for a retry (not due yet)
    # account name → (holder of its lease while it runs, consecutive failures); absent: never run
    accounts: dict[str, tuple[str | None, int]] = field(default_factory=dict)


async def status_figures(
    conn: AsyncConnection, accounts: Sequence[str], now: datetime
) -> StatusFigures:
    """Counts through the (state, next_attempt_at) indexes and the accounts' own rows: cheap at
    any table size, so a daemon may ask every few seconds."""
    found = StatusFigures(
        inbox=dict.fromkeys(INBOX_STATES, 0), outbox=dict.fromkeys(OUTBOX_STATES, 0)
    )
    rows = await conn.execute(
        select(inbox.c.state, func.count())
        .where(inbox.c.state.in_(INBOX_STATES))
        .group_by(inbox.c.state)
    )
    found.inbox.update((state, int(count)) for state, count in rows)
    rows = await conn.execute(
        select(outbox.c.state, func.count())
        .where(outbox.c.state.in_(OUTBOX_STATES))
        .group_by(outbox.c.state)
    )
    found.outbox.update((state, int(count)) for state, count in rows)
    deferred = and_(outbox.c.state == outbox_repo.PENDING, outbox.c.next_attempt_at > now)
    found.outbox_deferred = int(
        (await conn.execute(select(func.count()).select_from(outbox).where(deferred))).scalar_one()
    )
    if accounts:
        rows = await conn.execute(
            select(
                mailbox_state.c.account, mailbox_state.c.owner, mailbox_state.c.lease_until,
                mailbox_state.c.consecutive_failures,
            ).where(mailbox_state.c.account.in_(list(accounts)))
        )  # fmt: skip
        for account, owner, until, failures in rows:
            holder = owner if until is not None and until > now else None
            found.accounts[str(account)] = (holder, int(failures or 0))
    return found


async def ping(conn: AsyncConnection) -> None:
    """A trivial query: raises the driver's error when the database does not answer."""
    await conn.execute(text("SELECT 1"))
