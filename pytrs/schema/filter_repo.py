"""Postmaster filter rules in the database (Znuny's postmaster_filter rows) and back.

Stores and loads plain `Rule` records (`vocabulary.filter_rules`); it neither validates nor
compiles them: `postmaster.filter_rules` does that before it calls `replace_rules`, and again
when a worker loads them. The rules are replaced in one transaction, so an import applies
completely or not at all; the same transaction raises the filters' change generation, by which
running workers notice the new rules (`rules_version`) and by which a writer that read the
rules earlier (the web's rule form) learns that someone else saved meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from sqlalchemy import delete, func, insert, select

from pytrs.schema import generations
from pytrs.schema.database import Database
from pytrs.schema.tables import postmaster_filter
from pytrs.vocabulary.filter_rules import MatchRow, Rule, SetRow


async def load_rules(db: Database) -> list[Rule]:
    """Every stored rule, in name order, rows in key then value order (as Znuny reads them)."""
    columns = postmaster_filter.c
    query = select(postmaster_filter).order_by(
        columns.f_name, columns.f_type, columns.f_key, columns.f_value, columns.id
    )
    async with db.connect() as conn:
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
            await conn.execute(insert(postmaster_filter), rows)


# Asked before every batch: built once, so its cache key is derived once.
_VERSION = select(
    generations.value(generations.FILTERS),
    select(func.count()).select_from(postmaster_filter).scalar_subquery(),
    select(func.coalesce(func.max(postmaster_filter.c.id), 0)).scalar_subquery(),
)


async def rules_version(db: Database) -> tuple[int, int, int]:
    """The table's version in one cheap query: (generation, row count, highest id).

    An import raises the generation; the row count and highest id catch most edits made by
    other means (which do not).
    """
    async with db.connect() as conn:
        row = (await conn.execute(_VERSION)).one()
    return (int(row[0]), int(row[1]), int(row[2]))
