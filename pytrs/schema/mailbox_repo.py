"""Mailbox fetching state: cursors, the per-account lease, and health for admins.

The fetchers (gateway/imap.py, gateway/pop3.py) store fetched mail and advance their cursor in
one transaction, so "stored" and "remembered as stored" can never disagree; only then do they act
on the server. The lease row makes one daemon at a time fetch an account (several daemons on one
PostgreSQL), and another takes over when the holder stops renewing it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config, MailAccountConfig
from pytrs.schema import inbox_repo
from pytrs.schema.database import Database, conflict_insert, utcnow
from pytrs.schema.tables import inbox, mailbox_cursor, mailbox_state, pop3_seen
from pytrs.vocabulary.inbox import InboxItem


@dataclass(frozen=True, slots=True)
class Cursor:
    uidvalidity: int
    last_uid: int


async def get_cursor(db: Database, account: str, folder: str) -> Cursor | None:
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(mailbox_cursor.c.uidvalidity, mailbox_cursor.c.last_uid).where(
                    mailbox_cursor.c.account == account, mailbox_cursor.c.folder == folder
                )
            )
        ).first()
    return Cursor(int(row.uidvalidity), int(row.last_uid)) if row else None


async def _put_cursor(conn: AsyncConnection, account: str, folder: str, cursor: Cursor) -> None:
    values = {
        "account": account,
        "folder": folder,
        "uidvalidity": cursor.uidvalidity,
        "last_uid": cursor.last_uid,
        "updated_at": utcnow(),
    }
    statement = conflict_insert(conn, mailbox_cursor).values(**values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["account", "folder"],
            set_={k: v for k, v in values.items() if k not in ("account", "folder")},
        )
    )


async def set_cursor(db: Database, account: str, folder: str, cursor: Cursor) -> None:
    async with db.transaction() as conn:
        await _put_cursor(conn, account, folder, cursor)


async def store_and_advance(
    db: Database, items: Sequence[InboxItem], account: str, folder: str, cursor: Cursor
) -> None:
    """Commit fetched messages to the inbox and the cursor past them, in one transaction."""
    async with db.transaction() as conn:
        await inbox_repo.store(conn, items)
        await _put_cursor(conn, account, folder, cursor)
        await _ensure_state(conn, account)
        await conn.execute(
            update(mailbox_state)
            .where(mailbox_state.c.account == account)
            .values(messages_fetched=mailbox_state.c.messages_fetched + len(items))
        )


async def _ensure_state(conn: AsyncConnection, account: str) -> None:
    await conn.execute(
        conflict_insert(conn, mailbox_state)
        .values(account=account, messages_fetched=0, consecutive_failures=0)
        .on_conflict_do_nothing(index_elements=["account"])
    )


async def acquire_lease(db: Database, account: str, owner: str, seconds: float) -> bool:
    """Take or renew the right to fetch `account`; False while another live daemon holds it.

    A holder that is a dead process of this host (a daemon restarted after `kill -9`) is
    replaced at once; holders elsewhere are replaced when their lease runs out.
    """
    now = utcnow()
    async with db.transaction() as conn:
        await _ensure_state(conn, account)
        holder = (
            await conn.execute(
                select(mailbox_state.c.owner).where(mailbox_state.c.account == account)
            )
        ).scalar_one()
        if holder and holder != owner and inbox_repo.is_dead_local_process(holder):
            await conn.execute(
                update(mailbox_state)
                .where(mailbox_state.c.account == account, mailbox_state.c.owner == holder)
                .values(owner=None, lease_until=None)
            )
        result = await conn.execute(
            update(mailbox_state)
            .where(
                mailbox_state.c.account == account,
                or_(
                    mailbox_state.c.owner.is_(None),
                    mailbox_state.c.owner == owner,
                    mailbox_state.c.lease_until.is_(None),
                    mailbox_state.c.lease_until < now,
                ),
            )
            .values(owner=owner, lease_until=now + timedelta(seconds=seconds))
        )
        return bool(result.rowcount)


async def release_lease(db: Database, account: str, owner: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            update(mailbox_state)
            .where(and_(mailbox_state.c.account == account, mailbox_state.c.owner == owner))
            .values(owner=None, lease_until=None)
        )


async def record_success(
    db: Database,
    account: str,
    *,
    action_error: str | None = None,
    action_error_at: datetime | None = None,
    action_retry_at: datetime | None = None,
) -> None:
    """A pass that fetched: the connection's backoff ends and a stale error is cleared. When
    post-commit server actions are being refused (fetching goes on), that refusal is the
    account's last error instead, with its next retry."""
    async with db.transaction() as conn:
        await _ensure_state(conn, account)
        await conn.execute(
            update(mailbox_state)
            .where(mailbox_state.c.account == account)
            .values(
                last_success_at=utcnow(),
                consecutive_failures=0,
                last_error=action_error[:2000] if action_error else None,
                last_error_at=action_error_at if action_error else None,
                next_attempt_at=action_retry_at if action_error else None,
            )
        )


async def record_failure(db: Database, account: str, error: str, next_attempt: datetime) -> int:
    """Remember the error; returns the number of consecutive failures (for the backoff)."""
    async with db.transaction() as conn:
        await _ensure_state(conn, account)
        await conn.execute(
            update(mailbox_state)
            .where(mailbox_state.c.account == account)
            .values(
                last_error=error[:2000],
                last_error_at=utcnow(),
                next_attempt_at=next_attempt,
                consecutive_failures=mailbox_state.c.consecutive_failures + 1,
            )
        )
        row = await conn.execute(
            select(mailbox_state.c.consecutive_failures).where(mailbox_state.c.account == account)
        )
        return int(row.scalar_one())


async def record_skipped(db: Database, account: str, entries: Sequence[dict[str, Any]]) -> None:
    """Remember oversized messages left on the server (newest 100 kept)."""
    async with db.transaction() as conn:
        await _ensure_state(conn, account)
        current = (
            await conn.execute(
                select(mailbox_state.c.skipped).where(mailbox_state.c.account == account)
            )
        ).scalar_one()
        known = json.loads(current) if current else []
        merged = [*known, *(e for e in entries if e not in known)][-100:]
        await conn.execute(
            update(mailbox_state)
            .where(mailbox_state.c.account == account)
            .values(skipped=json.dumps(merged))
        )


async def states(db: Database) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(select(mailbox_state).order_by(mailbox_state.c.account))
        return [r._asdict() for r in rows]


def inbox_source(account_type: str, name: str) -> str:
    """The inbox ``source`` of mail fetched from an account: ``imap:NAME`` or ``pop3:NAME``."""
    return f"{'pop3' if account_type.startswith('pop3') else 'imap'}:{name}"


async def health(db: Database, config: Config) -> list[dict[str, Any]]:
    """Each configured mail account with its fetching state and its backlog (its mail still
    pending in the inbox), in the configuration's order: what `pytrs accounts` prints and
    the admin page shows."""
    sources = {inbox_source(a.type, a.name): a.name for a in config.mail_accounts}
    async with db.connect() as conn:
        rows = await conn.execute(select(mailbox_state))
        found = {str(r.account): r._asdict() for r in rows}
        waiting = await conn.execute(
            select(inbox.c.source, func.count())
            .where(inbox.c.state == inbox_repo.PENDING, inbox.c.source.in_(list(sources)))
            .group_by(inbox.c.source)
        )
        backlog = {sources[source]: int(n) for source, n in waiting}
        cursors = await _cursors(conn)
    return [
        {
            **_health(account, found.get(account.name, {}), backlog),
            "cursors": cursors.get(account.name, []),
        }
        for account in config.mail_accounts
    ]


async def _cursors(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
    """How far each account has fetched: per IMAP folder its UIDVALIDITY and highest UID
    committed; for POP3 the number of UIDLs remembered as stored (folder "INBOX")."""
    found: dict[str, list[dict[str, Any]]] = {}
    for r in await conn.execute(select(mailbox_cursor).order_by(mailbox_cursor.c.folder)):
        found.setdefault(str(r.account), []).append(
            {
                "folder": r.folder,
                "uidvalidity": int(r.uidvalidity),
                "last_uid": int(r.last_uid),
                "updated_at": r.updated_at,
                "uidls_seen": None,
            }
        )
    seen = select(pop3_seen.c.account, func.count(), func.max(pop3_seen.c.seen_at))
    for account, count, last in await conn.execute(seen.group_by(pop3_seen.c.account)):
        found.setdefault(str(account), []).append(
            {
                "folder": "INBOX",
                "uidvalidity": None,
                "last_uid": None,
                "updated_at": last,
                "uidls_seen": int(count),
            }
        )
    return found


def _health(
    account: MailAccountConfig, state: dict[str, Any], backlog: dict[str, int]
) -> dict[str, Any]:
    return {
        "account": account.name, "type": account.type, "host": account.host,
        "folder": account.folder, "mode": account.mode,
        "last_success_at": state.get("last_success_at"),
        "last_error": state.get("last_error"), "last_error_at": state.get("last_error_at"),
        "messages_fetched": state.get("messages_fetched", 0),
        "next_attempt_at": state.get("next_attempt_at"), "owner": state.get("owner"),
        "lease_until": state.get("lease_until"),
        "consecutive_failures": state.get("consecutive_failures", 0),
        "backlog": backlog.get(account.name, 0),
        "skipped": json.loads(str(state["skipped"])) if state.get("skipped") else [],
    }  # fmt: skip


async def seen_uidls(db: Database, account: str) -> set[str]:
    async with db.connect() as conn:
        rows = await conn.execute(select(pop3_seen.c.uidl).where(pop3_seen.c.account == account))
        return set(rows.scalars())


async def store_pop3(
    db: Database, items: Sequence[InboxItem], account: str, uidls: Sequence[str]
) -> None:
    """Commit fetched POP3 messages and remember their UIDLs, in one transaction."""
    now = utcnow()
    async with db.transaction() as conn:
        await inbox_repo.store(conn, items)
        if uidls:
            await conn.execute(
                conflict_insert(conn, pop3_seen).on_conflict_do_nothing(
                    index_elements=["account", "uidl"]
                ),
                [{"account": account, "uidl": u, "seen_at": now} for u in uidls],
            )
        await _ensure_state(conn, account)
        await conn.execute(
            update(mailbox_state)
            .where(mailbox_state.c.account == account)
            .values(messages_fetched=mailbox_state.c.messages_fetched + len(items))
        )


async def forget_uidls(db: Database, account: str, keep: Collection[str]) -> None:
    """Drop remembered UIDLs no longer on the server (deleted there), keeping the table small."""
    async with db.transaction() as conn:
        rows = await conn.execute(select(pop3_seen.c.uidl).where(pop3_seen.c.account == account))
        gone = [u for u in rows.scalars() if u not in keep]
        for start in range(0, len(gone), 500):
            await conn.execute(
                pop3_seen.delete().where(
                    pop3_seen.c.account == account, pop3_seen.c.uidl.in_(gone[start : start + 500])
                )
            )
