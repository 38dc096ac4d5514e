"""Rows copied from another system, stored as they are: the storage half of `pytrs import`.

Place in the flow: `pytrs.importers` maps a Znuny installation's queues, addresses, agents,
customer users, responses, dynamic fields and links to this database's ids and hands the rows
here; tickets and their articles go through `pytrs.tickets.imports` instead. Nothing here
decides what to copy: it answers "which of these are here already" and inserts what it is given,
keeping the ids it is given (the source's, where they are free here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pytrs.schema import database
from pytrs.schema.tables import postmaster_filter, ticket_number_counter
from pytrs.vocabulary.filter_rules import Rule

Row = dict[str, Any]


async def ids_by_key(conn: AsyncConnection, table: Table, key: str = "name") -> dict[str, int]:
    """Every row's id under its `key` column's value (e.g. queue name → id)."""
    query = select(table.c[key], table.c.id)
    return {str(k): int(i) for k, i in await conn.execute(query)}


async def taken_ids(conn: AsyncConnection, table: Table, ids: Iterable[int]) -> set[int]:
    """Which of `ids` already name a row of `table`."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(table.c.id).where(table.c.id.in_(chunk))
        found |= {int(i) for i in (await conn.scalars(query))}
    return found


async def next_free_id(conn: AsyncConnection, table: Table) -> int:
    """One past the highest id of `table`: a new row's id that cannot meet one inserted with an
    explicit id before (which a PostgreSQL sequence does not know about until it is moved)."""
    return int(await conn.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1


async def insert_row(conn: AsyncConnection, table: Table, row: Row) -> int:
    """Insert one row; returns its id (the one given, or the one the database chose)."""
    result = await conn.execute(insert(table).values(row).returning(table.c.id))
    return int(result.scalar_one())


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[Row]) -> None:
    """Insert rows that carry every id they need (or need none)."""
    if rows:
        await conn.execute(insert(table), list(rows))


async def set_column(conn: AsyncConnection, table: Table, row_id: int, **values: Any) -> None:
    await conn.execute(update(table).where(table.c.id == row_id).values(**values))


async def existing_pairs(
    conn: AsyncConnection, table: Table, first: str, second: str
) -> set[tuple[Any, Any]]:
    """The (first, second) column pairs of every row: links, assignments, memberships."""
    return {(a, b) for a, b in await conn.execute(select(table.c[first], table.c[second]))}


async def existing_tuples(
    conn: AsyncConnection, table: Table, columns: Sequence[str]
) -> set[tuple[Any, ...]]:
    query = select(*(table.c[name] for name in columns))
    return {tuple(row) for row in await conn.execute(query)}


async def raise_counter(conn: AsyncConnection, scope: str, at_least: int) -> int:
    """Make the ticket-number counter of `scope` at least `at_least` (never lowers it): the
    next number pytrs hands out then follows the copied ones. Returns the counter's value."""
    query = select(ticket_number_counter.c.counter).where(
        ticket_number_counter.c.counter_uid == scope
    )
    current = await conn.scalar(query)
    if current is None:
        await conn.execute(
            insert(ticket_number_counter).values(
                counter_uid=scope, counter=at_least, create_time=database.utcnow()
            )
        )
        return at_least
    if int(current) >= at_least:
        return int(current)
    await conn.execute(
        update(ticket_number_counter)
        .where(ticket_number_counter.c.counter_uid == scope)
        .values(counter=at_least)
    )
    return at_least


async def follow_ids(conn: AsyncConnection, tables: Sequence[Table]) -> None:
    """After rows were inserted with ids of their own: the ids the database hands out next
    come after them (see `database.follow_inserted_ids`)."""
    await database.follow_inserted_ids(conn, [table.name for table in tables])


async def all_rows(conn: AsyncConnection, table: Table) -> list[Row]:
    return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def filter_names(conn: AsyncConnection) -> set[str]:
    """The names of the postmaster filters stored here."""
    return set(await conn.scalars(select(postmaster_filter.c.f_name).distinct()))


async def add_filter_rules(conn: AsyncConnection, rules: Sequence[Rule]) -> None:
    """Store `rules` beside the ones here (checked and canonical already: the caller's job),
    as Znuny's rows: one per match or set row, the name and stop flag on each."""
    rows = [
        {"f_name": rule.name, "f_stop": int(rule.stop), "f_type": kind, "f_key": key,
         "f_value": value, "f_not": negate}
        for rule in rules
        for kind, key, value, negate in (
            *(("Match", m.header, m.value, int(m.negate)) for m in rule.match),
            *(("Set", s.header, s.value, 0) for s in rule.set),
        )
    ]  # fmt: skip
    await insert_rows(conn, postmaster_filter, rows)
