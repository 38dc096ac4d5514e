"""Declarative provisioning: the configuration's queues, system addresses, agents, mail accounts
and auto-responses synced into the database at every start.

Stores what it is given: the auto-responses come checked by the responders (their templates
compiled; `pytrs.provisioning` is the start-up's one call for both), everything else straight
from the configuration.

The file owns every row it names: rows it creates, and rows of the same name made by other
means, which it takes over (logged). Both are recorded in ``provisioned_row`` (see
``ownership``); a later start updates them and retires (valid_id = 2) the recorded rows the file
no longer names. Rows the file never named are left alone, whatever their comments say.

Each agent gets `rw` on its queues' groups (``agent_groups``); the file owns only the
``group_user`` rows it inserted, never those of `pytrs users`.

The ticket dynamic fields that `[[external_ticket_numbers]]` rules store numbers in are created
when missing (never removed: tickets keep their values).

Escalation targets (SPEC S9): each `[[queues]]` entry's budgets and calendar go into the
queue row's Znuny columns, `[[slas]]` into ``sla`` rows (retired like queues when dropped), and
`[[calendars]]` into ``business_calendar`` rows as the definitions given (holidays already
expanded by ``pytrs.calendars``; rows of calendars no longer declared are deleted).

Every start raises the change generations of the address book and the auto-responses (see
``generations``), so that other daemons sharing the database reload them. The escalation
generation is raised only when a target, an SLA or a calendar actually changed: it makes the
scheduler recompute every open ticket's deadlines, which a restart must not cost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.config import Config, MailAccountConfig
from pytrs.config.model import QueueConfig, SlaConfig
from pytrs.schema import agent_address, generations, ownership, queue_defaults
from pytrs.schema.agent_groups import sync_agent_groups
from pytrs.schema.database import Database, lock_keys, utcnow
from pytrs.schema.response_repo import sync_auto_responses
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import (
    business_calendar,
    dynamic_field,
    mail_account,
    queue,
    sla,
    system_address,
    users,
)
from pytrs.vocabulary import znuny
from pytrs.vocabulary.auto_responses import ResponseSpec

log = logging.getLogger(__name__)

MARK = "pytrs.toml"  # the comment of rows the file creates (for admins reading the tables)
INVALID = 2
# The advisory lock space ("pytp") in which daemons starting together provision one at a time.
_PROVISION_LOCK_SPACE = 0x70797470


async def provision_rows(
    db: Database,
    config: Config,
    *,
    auto_responses: Sequence[ResponseSpec],
    calendars: Mapping[str, Mapping[str, Any]],
) -> None:
    """Make the rows the configuration owns match it, its `[[auto_responses]]` as the checked
    `auto_responses` and its `[[calendars]]` as `calendars` (name → definition); raises
    ConfigError for entries the database refuses (a sender that is no system address)."""
    async with db.transaction() as conn:
        # Daemons sharing a database may start at the same moment: each reads what exists and
        # inserts the rest, so two first starts would both insert the same queue and one would
        # fail on its unique name. They take turns instead (PostgreSQL; SQLite's writers do).
        await lock_keys(conn, _PROVISION_LOCK_SPACE, [1])
        targets_before = await _escalation_targets(conn)
        queue_ids = await _sync_queues(conn, config)
        await _sync_addresses(conn, config, queue_ids)
        await _sync_agents(conn, config)
        await sync_agent_groups(conn, config)
        await _sync_mail_accounts(conn, config, queue_ids)
        await _ensure_dynamic_fields(conn, config)
        await sync_auto_responses(conn, config, auto_responses)
        await _sync_slas(conn, config)
        await _sync_calendars(conn, calendars)
        changed = [generations.ADDRESSES, generations.RESPONSES]
        if await _escalation_targets(conn) != targets_before:
            changed.append(generations.ESCALATION)
            log.info("escalation targets changed: open tickets' deadlines will be recomputed")
        await generations.bump(conn, *changed)


def _audit() -> dict[str, object]:
    now = utcnow()
    return {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}


def _changed() -> dict[str, object]:
    return {"change_time": utcnow(), "change_by": 1}


async def _keys(conn: AsyncConnection, table: Table, key: str) -> dict[str, int]:
    """Every row of `table` as key → id."""
    rows = await conn.execute(select(table.c[key], table.c.id))
    return {row[0]: row[1] for row in rows if row[0] is not None}


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    key: str,
    entries: dict[str, dict[str, Any]],
    creating: Callable[[str], dict[str, Any]],
) -> None:
    """Update the rows whose `key` is in `entries`, insert the others (`creating(key)` gives
    the columns set only on insert)."""
    existing = await _keys(conn, table, key)
    # Read first, then insert: beside Znuny some of these keys are not unique (system_address),
    # so no ON CONFLICT; the provisioning lock keeps two starts from inserting the same row.
    shaped = shape_of(conn).table(table)
    for name, values in entries.items():
        if name in existing:
            await conn.execute(
                update(table).where(table.c[key] == name).values(**values, **_changed())
            )
        else:
            row = {key: name, **creating(name), **values, **_audit()}
            await conn.execute(shaped.insert().values(row))


async def _settle(
    conn: AsyncConnection, table: Table, key: str, before: dict[str, int], wanted: Iterable[str]
) -> None:
    """Own the rows the file names and retire the owned rows it no longer names.

    `before` is key → id as it was before this start's writes: a named row in it that the file
    did not own yet is taken over, which the log says.
    """
    kind, wanted = table.name, set(wanted)
    now = await _keys(conn, table, key)
    owned = await ownership.owned(conn, kind, {i: k for k, i in now.items()})
    for name in sorted(wanted & before.keys()):
        if before[name] not in owned:
            log.warning("%s %s: the configuration takes over a row made by other means", kind, name)
    await ownership.own(conn, kind, {now[name]: name for name in wanted})
    retired = [i for name, i in now.items() if i in owned and name not in wanted]
    if retired:
        await conn.execute(
            update(table).where(table.c.id.in_(retired)).values(valid_id=INVALID, **_changed())
        )
        log.info("%s: retired %d row(s) no longer in the configuration", kind, len(retired))


async def _sync_queues(conn: AsyncConnection, config: Config) -> dict[str, int]:
    before = await _keys(conn, queue, "name")
    entries = {
        q.name: {
            "follow_up_id": znuny.FOLLOW_UP_IDS[q.follow_up],
            "follow_up_lock": int(q.follow_up_lock),
            "valid_id": 1,
            **({"comments": q.comments} if q.comments else {}),
            **_target_columns(q),
        }
        for q in config.queues
    }
    created = {
        "group_id": znuny.GROUP_USERS, "comments": MARK,
        **await queue_defaults.new_queue_columns(conn),
    }  # fmt: skip
    await _upsert(conn, queue, "name", entries, lambda _name: created)
    await _settle(conn, queue, "name", before, entries)
    return await _keys(conn, queue, "name")


def _target_columns(entry: QueueConfig | SlaConfig) -> dict[str, Any]:
    """Znuny's escalation columns of a queue or SLA row: budgets in minutes (0 = none), the
    notify-before share in percent (NULL = none, as Znuny leaves it), the calendar (NULL =
    the default, 24/7 in [scheduler] timezone)."""
    notify = entry.notify_before_percent or None
    return {
        "calendar_name": entry.calendar or None,
        "first_response_time": entry.first_response_minutes,
        "first_response_notify": notify,
        "update_time": entry.update_minutes,
        "update_notify": notify,
        "solution_time": entry.solution_minutes,
        "solution_notify": notify,
    }


async def _sync_slas(conn: AsyncConnection, config: Config) -> None:
    before = await _keys(conn, sla, "name")
    entries = {
        s.name: {
            "valid_id": 1,
            **({"comments": s.comments} if s.comments else {}),
            **_target_columns(s),
        }
        for s in config.slas
    }
    await _upsert(conn, sla, "name", entries, lambda _name: {"comments": MARK})
    await _settle(conn, sla, "name", before, entries)


async def _sync_calendars(
    conn: AsyncConnection, calendars: Mapping[str, Mapping[str, Any]]
) -> None:
    """Store each definition that differs from its row; delete the rows of calendars no longer
    declared (a queue or SLA still naming one counts 24/7, as for an unknown name)."""
    c = business_calendar.c
    stored: dict[str, str] = {
        row.name: row.definition for row in await conn.execute(select(c.name, c.definition))
    }
    for name, definition in calendars.items():
        text = json.dumps(definition, sort_keys=True)
        if name not in stored:
            await conn.execute(
                business_calendar.insert().values(name=name, definition=text, change_time=utcnow())
            )
        elif stored[name] != text:
            await conn.execute(
                update(business_calendar)
                .where(c.name == name)
                .values(definition=text, change_time=utcnow())
            )
    dropped = sorted(stored.keys() - calendars.keys())
    if dropped:
        await conn.execute(delete(business_calendar).where(c.name.in_(dropped)))
        log.info("business_calendar: deleted %s (no longer configured)", ", ".join(dropped))


# The columns of a queue or SLA row that escalation deadlines depend on.
_TARGETS = (
    "calendar_name",
    "first_response_time",
    "first_response_notify",
    "update_time",
    "update_notify",
    "solution_time",
    "solution_notify",
)


async def _escalation_targets(conn: AsyncConnection) -> tuple[Any, ...]:
    """Everything the escalation deadlines are computed from, as comparable values: the
    queues' and SLAs' targets (and whether each SLA is valid) and the calendars."""
    q, s, c = queue.c, sla.c, business_calendar.c
    queues = await conn.execute(select(q.name, *(q[k] for k in _TARGETS)).order_by(q.name))
    slas = await conn.execute(
        select(s.name, s.valid_id, *(s[k] for k in _TARGETS)).order_by(s.name)
    )
    calendars = await conn.execute(select(c.name, c.definition).order_by(c.name))
    return tuple(tuple(map(tuple, rows)) for rows in (queues, slas, calendars))


async def _sync_addresses(conn: AsyncConnection, config: Config, queue_ids: dict[str, int]) -> None:
    before = await _keys(conn, system_address, "value0")
    entries = {
        a.address.lower(): {"value1": a.name, "queue_id": queue_ids[a.queue], "valid_id": 1}
        for a in config.system_addresses
    }
    await _upsert(conn, system_address, "value0", entries, lambda _address: {"comments": MARK})
    await _settle(conn, system_address, "value0", before, entries)
    configured = {q.name for q in config.queues}
    await queue_defaults.queue_addresses(
        conn, {name: i for name, i in queue_ids.items() if name in configured}
    )


async def _sync_agents(conn: AsyncConnection, config: Config) -> None:
    before = await _keys(conn, users, "login")
    addresses = {a.login: a.email.lower() for a in config.agents}
    entries = {
        login: {**agent_address.row_values(conn, email), "valid_id": 1}
        for login, email in addresses.items()
    }
    await _upsert(conn, users, "login", entries, _new_agent)
    await _settle(conn, users, "login", before, entries)
    ids = await _keys(conn, users, "login")
    await agent_address.store(conn, {ids[login]: email for login, email in addresses.items()})


def _new_agent(login: str) -> dict[str, Any]:
    # Znuny lists agents by name: a new agent's first name is its login.
    return {"pw": "", "first_name": login, "last_name": ""}


async def _sync_mail_accounts(
    conn: AsyncConnection, config: Config, queue_ids: dict[str, int]
) -> None:
    """Mirror `[[mail_accounts]]` into Znuny's mail_account (keyed by name in `comments`);
    passwords are never written to the database."""
    before = await _keys(conn, mail_account, "comments")
    entries = {
        account.name: _account_values(account, queue_ids) for account in config.mail_accounts
    }
    await _upsert(conn, mail_account, "comments", entries, lambda _name: {})
    await _settle(conn, mail_account, "comments", before, entries)


def _account_values(account: MailAccountConfig, queue_ids: dict[str, int]) -> dict[str, Any]:
    return {
        "login": account.user, "pw": "", "host": account.host,
        "account_type": account.type.upper().replace("+", ""),
        "queue_id": queue_ids.get(account.queue, 0) if account.queue else 0,
        "trusted": int(account.trusted), "imap_folder": account.folder,
        "authentication_type": "password", "valid_id": 1,
    }  # fmt: skip


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
