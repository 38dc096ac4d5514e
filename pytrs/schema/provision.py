"""Declarative provisioning: `[[queues]]`, `[[system_addresses]]` and `[[agents]]` synced at start.

The ticket dynamic fields that `[[external_ticket_numbers]]` rules store numbers in are created
when missing (never removed: tickets keep their values).

Rows created from the configuration are marked (comments = "pytrs.toml") so that a later start
can update them, and retire (valid_id = 2) those removed from the file, without touching rows
an admin created by other means.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config
from pytrs.schema import seed
from pytrs.schema.database import Database, utcnow
from pytrs.schema.response_repo import sync_auto_responses
from pytrs.schema.tables import dynamic_field, mail_account, queue, system_address, users

MARK = "pytrs.toml"


async def provision(db: Database, config: Config) -> None:
    """Make queues, system addresses and agents in the database match the configuration."""
    async with db.transaction() as conn:
        queue_ids = await _sync_queues(conn, config)
        await _sync_addresses(conn, config, queue_ids)
        await _sync_agents(conn, config)
        await _sync_mail_accounts(conn, config, queue_ids)
        await _ensure_dynamic_fields(conn, config)
        await sync_auto_responses(conn, config)


def _audit() -> dict[str, object]:
    now = utcnow()
    return {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}


async def _sync_queues(conn: AsyncConnection, config: Config) -> dict[str, int]:
    existing = {
        r.name: r for r in await conn.execute(select(queue.c.id, queue.c.name, queue.c.comments))
    }
    for q in config.queues:
        values = {
            "follow_up_id": seed.FOLLOW_UP_IDS[q.follow_up],
            "follow_up_lock": int(q.follow_up_lock),
            "valid_id": 1,
        }
        if q.name in existing:
            await conn.execute(update(queue).where(queue.c.name == q.name).values(**values))
        else:
            await conn.execute(
                queue.insert().values(
                    name=q.name, group_id=seed.GROUP_USERS, comments=q.comments or MARK,
                    **values, **_audit(),
                )
            )  # fmt: skip
    wanted = {q.name for q in config.queues}
    retired = [n for n, r in existing.items() if r.comments == MARK and n not in wanted]
    if retired:
        await conn.execute(update(queue).where(queue.c.name.in_(retired)).values(valid_id=2))
    return {r.name: r.id for r in await conn.execute(select(queue.c.id, queue.c.name))}


async def _sync_addresses(conn: AsyncConnection, config: Config, queue_ids: dict[str, int]) -> None:
    rows = await conn.execute(select(system_address.c.value0, system_address.c.comments))
    existing = {r.value0: r.comments for r in rows}
    for a in config.system_addresses:
        address = a.address.lower()
        values = {"value1": a.name, "queue_id": queue_ids[a.queue], "valid_id": 1}
        if address in existing:
            await conn.execute(
                update(system_address).where(system_address.c.value0 == address).values(**values)
            )
        else:
            await conn.execute(
                system_address.insert().values(value0=address, comments=MARK, **values, **_audit())
            )
    wanted = {a.address.lower() for a in config.system_addresses}
    retired = [v for v, c in existing.items() if c == MARK and v not in wanted]
    if retired:
        await conn.execute(
            update(system_address).where(system_address.c.value0.in_(retired)).values(valid_id=2)
        )


async def _sync_agents(conn: AsyncConnection, config: Config) -> None:
    existing = set((await conn.execute(select(users.c.login))).scalars())
    for agent in config.agents:
        if agent.login in existing:
            await conn.execute(
                update(users)
                .where(users.c.login == agent.login)
                .values(email=agent.email.lower(), valid_id=1)
            )
        else:
            await conn.execute(
                users.insert().values(
                    login=agent.login, email=agent.email.lower(), pw="", first_name=agent.login,
                    last_name="", valid_id=1, **_audit(),
                )
            )  # fmt: skip


async def _sync_mail_accounts(
    conn: AsyncConnection, config: Config, queue_ids: dict[str, int]
) -> None:
    """Mirror `[[mail_accounts]]` into Znuny's mail_account (keyed by name in `comments`);
    passwords are never written to the database."""
    existing = set((await conn.execute(select(mail_account.c.comments))).scalars())
    for account in config.mail_accounts:
        values = {
            "login": account.user, "pw": "", "host": account.host,
            "account_type": account.type.upper().replace("+", ""),
            "queue_id": queue_ids.get(account.queue, 0) if account.queue else 0,
            "trusted": int(account.trusted), "imap_folder": account.folder,
            "authentication_type": "password", "valid_id": 1,
        }  # fmt: skip
        if account.name in existing:
            await conn.execute(
                update(mail_account).where(mail_account.c.comments == account.name).values(**values)
            )
        else:
            await conn.execute(
                mail_account.insert().values(comments=account.name, **values, **_audit())
            )
    wanted = {a.name for a in config.mail_accounts}
    retired = [name for name in existing if name not in wanted]
    if retired:
        await conn.execute(
            update(mail_account).where(mail_account.c.comments.in_(retired)).values(valid_id=2)
        )


async def _ensure_dynamic_fields(conn: AsyncConnection, config: Config) -> None:
    wanted = {rule.dynamic_field for rule in config.external_ticket_numbers}
    if not wanted:
        return
    existing = set((await conn.execute(select(dynamic_field.c.name))).scalars())
    for name in sorted(wanted - existing):
        await conn.execute(
            dynamic_field.insert().values(
                internal_field=0, name=name, label=name, field_order=1, field_type="Text",
                object_type="Ticket", config="{}", valid_id=1, **_audit(),
            )
        )  # fmt: skip
