"""Postmaster filter rules in the database (Znuny's postmaster_filter rows) and back.

Stores and loads plain `Rule` records (`vocabulary.filter_rules`); it neither validates nor
compiles them: `postmaster.filter_rules` does that before it calls `replace_rules`, and again
when a worker loads them. The rules are replaced in one transaction, so an import applies
completely or not at all; the same transaction raises the filters' change generation, by which
running workers notice the new rules (`rules_version`) and by which a writer that read the
rules earlier (the web's rule form) learns that someone else saved meanwhile.

Beside Znuny (`[database] mode = "znuny"`, told by the connection's shape) Znuny 7.0's
``postmaster_filter`` has no ``id``: a rule's rows are told apart by ``f_name`` and read in
the order Znuny's ``Kernel/System/PostMaster/Filter.pm`` reads them (by key, then value), and
``f_value`` holds 200 characters (`value_limit`: longer values are refused before storing, a
cut regular expression would match something else). ``f_stop`` and ``f_not`` may be NULL in
rows Znuny wrote: read as false.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from pytrs.schema import generations
from pytrs.schema.database import Database
from pytrs.schema.shape import shape_of
from pytrs.schema.tables import postmaster_filter
from pytrs.vocabulary.filter_rules import MatchRow, Rule, SetRow

_c = postmaster_filter.c
_ROW = (_c.f_name, _c.f_stop, _c.f_type, _c.f_key, _c.f_value, _c.f_not)
_IN_ORDER = (_c.f_name, _c.f_type, _c.f_key, _c.f_value)
# Rows equal in all of those keep the order they were stored in (their id), or beside Znuny,
# which has no id, are put in one order by `f_not`.
_RULE_ROWS = select(*_ROW).order_by(*_IN_ORDER, _c.id)
_RULE_ROWS_WITHOUT_ID = select(*_ROW).order_by(*_IN_ORDER, _c.f_not)


def _without_id(conn: AsyncConnection) -> bool:
    return shape_of(conn).lacks(postmaster_filter.name, "id")


async def value_limit(db: Database) -> int | None:
    """The most characters a rule's value may have here (None: no limit pytrs would reach):
    200 beside Znuny, whose f_value is VARCHAR(200)."""
    async with db.connect() as conn:
        return shape_of(conn).lengths.get((postmaster_filter.name, "f_value"))


async def load_rules(db: Database) -> list[Rule]:
    """Every stored rule, in name order, rows in key then value order (as Znuny reads them)."""
    async with db.connect() as conn:
        query = _RULE_ROWS_WITHOUT_ID if _without_id(conn) else _RULE_ROWS
        rows = list(await conn.execute(query))
    rules = []
    for name, group in groupby(rows, key=lambda r: r.f_name):
        members = list(group)
        rules.append(
            Rule(
                name=name,
                match=tuple(
                    MatchRow(r.f_key, r.f_value, bool(r.f_not))
                    for r in members
                    if r.f_type == "Match"
                ),
                set=tuple(SetRow(r.f_key, r.f_value) for r in members if r.f_type == "Set"),
                stop=any(r.f_stop for r in members),
            )
        )
    return rules


class RulesChanged(RuntimeError):
    """The rules changed since the caller read them (`replace_rules(..., expected=…)`)."""


async def generation(db: Database) -> int:
    """The filters' change generation: raised by every `replace_rules`."""
    async with db.connect() as conn:
        return int(await conn.scalar(select(generations.value(generations.FILTERS))) or 0)


async def replace_rules(
    db: Database, rules: Sequence[Rule], *, expected: int | None = None
) -> None:
    """Store `rules`, as they are, instead of the current ones, in one transaction.

    With `expected` (a `generation` read before the rules were), raises RulesChanged and
    changes nothing when another writer replaced the rules since: the generation is raised
    first, which holds its row until commit, so of two writers that read the same generation
    only the first succeeds.
    """
    rows = [
        {
            "f_name": rule.name,
            "f_stop": int(rule.stop),
            "f_type": kind,
            "f_key": key,
            "f_value": value,
            "f_not": negate,
        }
        for rule in rules
        for kind, key, value, negate in (
            *(("Match", m.header, m.value, int(m.negate)) for m in rule.match),
            *(("Set", s.header, s.value, 0) for s in rule.set),
        )
    ]
    async with db.transaction() as conn:
        await generations.bump(conn, generations.FILTERS)
        if expected is not None:
            now = await conn.scalar(select(generations.value(generations.FILTERS)))
            if now != expected + 1:
                raise RulesChanged(f"the filters changed (generation {expected} → {now})")
        await conn.execute(delete(postmaster_filter))
        if rows:
            await conn.execute(insert(shape_of(conn).table(postmaster_filter)), rows)


def _version(edits: ColumnElement[Any]) -> Select[Any]:
    return select(
        generations.value(generations.FILTERS),
        select(func.count()).select_from(postmaster_filter).scalar_subquery(),
        select(func.coalesce(edits, 0)).select_from(postmaster_filter).scalar_subquery(),
    )


# Asked before every batch: built once, so its cache key is derived once. What tells of an
# edit made by other means: the highest id; beside Znuny, without ids, the rows' total length
# (Znuny's filter form deletes a filter's rows and inserts them again).
_VERSION = _version(func.max(_c.id))
_VERSION_WITHOUT_ID = _version(
    func.sum(func.length(_c.f_name) + func.length(_c.f_key) + func.length(_c.f_value))
)


async def rules_version(db: Database) -> tuple[int, int, int]:
    """The table's version in one cheap query: (generation, row count, highest id — beside
    Znuny the rows' total length).

    An import raises the generation; the row count and the last number catch most edits made
    by other means (which do not).
    """
    async with db.connect() as conn:
        query = _VERSION_WITHOUT_ID if _without_id(conn) else _VERSION
        row = (await conn.execute(query)).one()
    return (int(row[0]), int(row[1]), int(row[2]))
