"""Copying what tickets refer to: names, queues, addresses, agents, customers, dynamic fields,
auto responses and postmaster filters.

Place in the flow: the first half of `importers.znuny`, before any ticket. Every row is known
by its name (a queue's name, an address, a login …): a name pytrs has already is "already
there" and Znuny's id is mapped to pytrs's row; a new name is inserted with Znuny's id when
that id is free here. Provisioning (`schema.provision`) leaves rows it never created alone, so
a daemon started after an import keeps them; a row of the same name as one in the
configuration is taken over by it, as any row of that name would be.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.importers import mapping, znuny_source
from pytrs.importers.mapping import Ids, Row
from pytrs.importers.report import Summary
from pytrs.postmaster.control import canonical
from pytrs.postmaster.filters import CompiledRules, RuleError
from pytrs.responders import znuny_tags
from pytrs.schema import generations, import_repo, tables
from pytrs.schema.database import utcnow
from pytrs.vocabulary.filter_rules import Rule, SetRow

# Names pytrs may add when Znuny has one it lacks (a custom state, priority, type …). The
# others name behaviour pytrs must implement (a communication channel, an auto-response type,
# a linkable object): rows referring to one pytrs lacks are skipped, each with its reason.
ADDABLE = (
    "ticket_state_type",
    "ticket_state",
    "ticket_priority",
    "ticket_lock_type",
    "ticket_type",
    "article_sender_type",
    "ticket_history_type",
    "permission_groups",
    "link_type",
    "link_state",
)


class ImportRefused(Exception):
    """The two databases disagree in a way no row-by-row skip can fix; nothing more is copied."""


async def follow_ids(conn: AsyncConnection, ids: Ids, written: list[Table]) -> None:
    """Move the id counters past rows inserted with Znuny's ids; not in a dry run, whose rows
    are rolled back while a sequence's move (on PostgreSQL) would stay."""
    if not ids.dry_run:
        await import_repo.follow_ids(conn, written)


def _target(name: str) -> Table:
    return tables.Base.metadata.tables[name]


async def _keep_or_new(conn: AsyncConnection, table: Table, source_id: int, row: Row) -> int:
    """Insert `row` under Znuny's id when it is free here, else under a new one."""
    free = not await import_repo.taken_ids(conn, table, [source_id])
    new_id = source_id if free else await import_repo.next_free_id(conn, table)
    return await import_repo.insert_row(conn, table, {"id": new_id} | row)


def _stamp(table: Table, row: Row) -> Row:
    now = utcnow()
    if "create_time" in table.c:
        row |= {"create_time": now, "create_by": 1, "change_time": now, "change_by": 1}
    return row


async def copy_names(
    src: AsyncConnection, conn: AsyncConnection, present: set[str], ids: Ids, summary: Summary
) -> None:
    """States, priorities, types, sender types, channels, history types, groups, link kinds:
    mapped by name (pytrs seeds Znuny's), the missing addable ones inserted."""
    for name, source_table in znuny_source.LOOKUPS.items():
        if name not in present:
            continue
        target = _target(name)
        here = await import_repo.ids_by_key(conn, target)
        for row in await znuny_source.rows(src, source_table):
            if row["name"] in here:
                ids.put(name, row["id"], here[row["name"]])
                summary.add_present("names")
                continue
            if name not in ADDABLE:
                continue  # rows using it are skipped where they are met
            values: Row = {"name": row["name"], "valid_id": 1}
            if name == "ticket_state":
                values["type_id"] = ids.need("ticket_state_type", row["type_id"])
            new_id = await _keep_or_new(conn, target, row["id"], _stamp(target, values))
            ids.put(name, row["id"], new_id)
            summary.add_copied("names")
        if name == "ticket_state":
            await _check_state_types(src, conn, ids)
    await follow_ids(conn, ids, [_target(name) for name in ADDABLE])


async def _check_state_types(src: AsyncConnection, conn: AsyncConnection, ids: Ids) -> None:
    """A state of the same name but another kind (Znuny's `closed successful` is `open` here)
    would change what every ticket in it means: refuse rather than guess."""
    source_states = await znuny_source.rows(src, znuny_source.LOOKUPS["ticket_state"])
    target_states = {
        r["id"]: r["type_id"] for r in await import_repo.all_rows(conn, _target("ticket_state"))
    }
    for state in source_states:
        mine = ids.get("ticket_state", state["id"])
        wanted = ids.get("ticket_state_type", state["type_id"])
        if mine is not None and wanted is not None and target_states.get(mine) != wanted:
            raise ImportRefused(
                f"ticket state {state['name']!r} is of another state type here than in Znuny: "
                "rename one of them (or give it the same type), then import again"
            )


async def copy_queues_and_addresses(
    src: AsyncConnection, conn: AsyncConnection, ids: Ids, summary: Summary
) -> None:
    """Queues, then their system addresses, then each copied queue's address."""
    here = await import_repo.ids_by_key(conn, tables.queue)
    copied: dict[int, int] = {}  # id here → Znuny's system_address_id
    for row in await znuny_source.rows(src, znuny_source.queue):
        if row["name"] in here:
            ids.put("queue", row["id"], here[row["name"]])
            summary.add_present("queues")
            continue
        try:
            values = mapping.queue_row(row, ids)
        except KeyError as exc:
            summary.skip("queues", row["name"], f"refers to {exc.args[0]}, which is not here")
            continue
        new_id = await _keep_or_new(conn, tables.queue, row["id"], values)
        ids.put("queue", row["id"], new_id)
        copied[new_id] = row["system_address_id"]
        summary.add_copied("queues")
    addresses = {
        k.lower(): v
        for k, v in (await import_repo.ids_by_key(conn, tables.system_address, "value0")).items()
    }
    for row in await znuny_source.rows(src, znuny_source.system_address):
        if row["value0"].lower() in addresses:
            ids.put("system_address", row["id"], addresses[row["value0"].lower()])
            summary.add_present("system addresses")
            continue
        try:
            values = mapping.address_row(row, ids)
        except KeyError as exc:
            summary.skip(
                "system addresses", row["value0"], f"its queue ({exc.args[0]}) is not here"
            )
            continue
        new_id = await _keep_or_new(conn, tables.system_address, row["id"], values)
        ids.put("system_address", row["id"], new_id)
        summary.add_copied("system addresses")
    for queue_id, address_id in copied.items():
        mine = ids.get("system_address", address_id)
        await import_repo.set_column(conn, tables.queue, queue_id, system_address_id=mine)
    await follow_ids(conn, ids, [tables.queue, tables.system_address])
    await generations.bump(conn, generations.ADDRESSES, generations.ESCALATION)


async def copy_agents(
    src: AsyncConnection, conn: AsyncConnection, ids: Ids, summary: Summary
) -> None:
    """Agents with their address (Znuny's `UserEmail` preference) and group permissions."""
    emails = {
        r["user_id"]: znuny_source.text_value(r["preferences_value"])
        for r in await znuny_source.rows(src, znuny_source.user_preferences, "user_id")
        if r["preferences_key"] == "UserEmail"
    }
    here = await import_repo.ids_by_key(conn, tables.users, "login")
    for row in await znuny_source.rows(src, znuny_source.users):
        if row["login"] in here:
            ids.put("users", row["id"], here[row["login"]])
            summary.add_present("agents")
            continue
        values = mapping.agent_row(row, emails.get(row["id"]), ids)
        ids.put("users", row["id"], await _keep_or_new(conn, tables.users, row["id"], values))
        summary.add_copied("agents")
    await follow_ids(conn, ids, [tables.users])
    columns = ("user_id", "group_id", "permission_key")
    have = await import_repo.existing_tuples(conn, tables.group_user, columns)
    new: list[Row] = []
    for row in await znuny_source.rows(src, znuny_source.group_user, *columns):
        user, group = (
            ids.get("users", row["user_id"]),
            ids.get("permission_groups", row["group_id"]),
        )
        if user is None or group is None:
            summary.skip(
                "agent permissions",
                f"user {row['user_id']} group {row['group_id']}",
                "the agent or the group is not here",
            )
            continue
        key = (user, group, row["permission_key"])
        if key in have:
            summary.add_present("agent permissions")
            continue
        have.add(key)
        new.append(dict(zip(columns, key, strict=True)) | mapping.audit(row, ids))
        summary.add_copied("agent permissions")
    await import_repo.insert_rows(conn, tables.group_user, new)


async def copy_customers(
    src: AsyncConnection, conn: AsyncConnection, ids: Ids, summary: Summary
) -> None:
    here = await import_repo.ids_by_key(conn, tables.customer_user, "login")
    for row in await znuny_source.rows(src, znuny_source.customer_user):
        if row["login"] in here:
            summary.add_present("customer users")
            continue
        values = mapping.customer_row(row, ids)
        await _keep_or_new(conn, tables.customer_user, row["id"], values)
        summary.add_copied("customer users")
    await follow_ids(conn, ids, [tables.customer_user])


async def copy_fields(
    src: AsyncConnection, conn: AsyncConnection, ids: Ids, summary: Summary
) -> dict[int, str]:
    """Dynamic field definitions; returns each mapped field's object type (Znuny id → type)."""
    here = await import_repo.ids_by_key(conn, tables.dynamic_field)
    kinds: dict[int, str] = {}
    for row in await znuny_source.rows(src, znuny_source.dynamic_field):
        kinds[row["id"]] = row["object_type"]
        if row["name"] in here:
            ids.put("dynamic_field", row["id"], here[row["name"]])
            summary.add_present("dynamic fields")
            continue
        values = mapping.field_row(row, ids)
        new_id = await _keep_or_new(conn, tables.dynamic_field, row["id"], values)
        ids.put("dynamic_field", row["id"], new_id)
        summary.add_copied("dynamic fields")
    await follow_ids(conn, ids, [tables.dynamic_field])
    return kinds


def translate(text: str | None, content_type: str | None) -> tuple[str, tuple[str, ...]]:
    """A Znuny template text in pytrs's template language, and the tags it could not map."""
    if not text:
        return "", ()
    found = znuny_tags.translate(text, (content_type or "text/plain").split(";")[0].strip())
    return found.template, found.unknown


async def copy_responses(
    src: AsyncConnection, conn: AsyncConnection, ids: Ids, summary: Summary
) -> None:
    """Auto responses (their `<OTRS_*>` tags translated) and their queues."""
    here = await import_repo.ids_by_key(conn, tables.auto_response)
    for row in await znuny_source.rows(src, znuny_source.auto_response):
        if row["name"] in here:
            ids.put("auto_response", row["id"], here[row["name"]])
            summary.add_present("auto responses")
            continue
        body, unknown_body = translate(row["text0"], row["content_type"])
        subject, unknown_subject = translate(row["text1"], "text/plain")
        try:
            values = mapping.response_row(row, body, subject, ids)
        except KeyError as exc:
            summary.skip("auto responses", row["name"], f"refers to {exc.args[0]}, not here")
            continue
        new_id = await _keep_or_new(conn, tables.auto_response, row["id"], values)
        ids.put("auto_response", row["id"], new_id)
        summary.add_copied("auto responses")
        for tag in dict.fromkeys(unknown_body + unknown_subject):
            summary.skip(
                "response tags",
                f"{row['name']}: {tag}",
                "no such value in pytrs: "
                'the response shows "-" there, as Znuny does for an unknown tag',
            )
    await follow_ids(conn, ids, [tables.auto_response])
    have = await import_repo.existing_pairs(
        conn, tables.queue_auto_response, "queue_id", "auto_response_id"
    )
    new = []
    for row in await znuny_source.rows(src, znuny_source.queue_auto_response):
        pair = (
            ids.get("queue", row["queue_id"]),
            ids.get("auto_response", row["auto_response_id"]),
        )
        if None in pair:
            summary.skip(
                "response queues",
                f"queue {row['queue_id']} response {row['auto_response_id']}",
                "the queue or the response is not here",
            )
        elif pair in have:
            summary.add_present("response queues")
        else:
            have.add(pair)
            new.append({"queue_id": pair[0], "auto_response_id": pair[1]} | mapping.audit(row, ids))
            summary.add_copied("response queues")
    await import_repo.insert_rows(conn, tables.queue_auto_response, new)
    await generations.bump(conn, generations.RESPONSES)


async def copy_filters(src: AsyncConnection, conn: AsyncConnection, summary: Summary) -> None:
    """Postmaster filters, one rule per Znuny filter name; a rule pytrs cannot run (a regex
    RE2 does not take, a header it does not know to set …) is skipped with the reason."""
    present = await import_repo.filter_names(conn)
    rules = mapping.filter_rules(
        await znuny_source.rows(src, znuny_source.postmaster_filter, "f_name")
    )
    fresh: list[Rule] = []
    for rule in rules:
        if rule.name in present:
            summary.add_present("postmaster filters")
            continue
        try:
            CompiledRules.compile([rule])
        except RuleError as exc:
            summary.skip("postmaster filters", rule.name, "; ".join(p.why for p in exc.problems))
            continue
        fresh.append(_canonical_sets(rule))
        summary.add_copied("postmaster filters")
    if fresh:
        await import_repo.add_filter_rules(conn, fresh)
        await generations.bump(conn, generations.FILTERS)


def _canonical_sets(rule: Rule) -> Rule:
    """Znuny's `X-OTRS-*` set headers under pytrs's `X-PyTRS-*` names (aliases of each other)."""
    rows = tuple(SetRow(canonical(s.header) or s.header, s.value) for s in rule.set)
    return Rule(rule.name, rule.match, rows, rule.stop)
