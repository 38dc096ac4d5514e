"""Postmaster filter rules in the database (Znuny's postmaster_filter rows) and back.

Rules are validated as a whole (`CompiledRules.compile`) before anything is written, and
replaced in one transaction: an import applies completely or not at all. The same transaction
raises the filters' change generation, by which running workers notice the new rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import delete, func, insert, select

from pytrs.postmaster.control import canonical
from pytrs.postmaster.filters import CompiledRules, MatchRow, Rule, RuleError, SetRow
from pytrs.schema import generations
from pytrs.schema.database import Database
from pytrs.schema.tables import postmaster_filter

log = logging.getLogger(__name__)


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


async def replace_rules(db: Database, rules: Sequence[Rule]) -> None:
    """Validate `rules` (raises RuleError listing every problem) and store them instead of the
    current ones, in one transaction."""
    CompiledRules.compile(rules)
    rows = [
        {"f_name": rule.name, "f_stop": int(rule.stop), "f_type": kind, "f_key": key,
         "f_value": value, "f_not": negate}
        for rule in rules
        for kind, key, value, negate in (
            *(("Match", m.header, m.value, int(m.negate)) for m in rule.match),
            # X-OTRS-* aliases are stored under their X-PyTRS-* names.
            *(("Set", canonical(s.header) or s.header, s.value, 0) for s in rule.set),
        )
    ]  # fmt: skip
    async with db.transaction() as conn:
        await conn.execute(delete(postmaster_filter))
        if rows:
            await conn.execute(insert(postmaster_filter), rows)
        await generations.bump(conn, generations.FILTERS)


@dataclass(frozen=True, slots=True)
class LoadedRules:
    """Compiled rules and the table version they came from (generation, row count, highest id)."""

    compiled: CompiledRules
    version: tuple[int, int, int]


NO_RULES = LoadedRules(CompiledRules.compile([]), (-1, -1, -1))


async def current_rules(db: Database, loaded: LoadedRules) -> LoadedRules:
    """`loaded` while the table is unchanged (one cheap query), else freshly compiled rules.

    An import raises the generation; the row count and highest id catch most edits made by
    other means (which do not). A stored rule that no longer compiles (edited by hand) leaves
    the previous rules in force, logged, rather than none.
    """
    query = select(
        generations.value(generations.FILTERS),
        select(func.count()).select_from(postmaster_filter).scalar_subquery(),
        select(func.coalesce(func.max(postmaster_filter.c.id), 0)).scalar_subquery(),
    )
    async with db.connect() as conn:
        row = (await conn.execute(query)).one()
    version = (int(row[0]), int(row[1]), int(row[2]))
    if version == loaded.version:
        return loaded
    try:
        return LoadedRules(CompiledRules.compile(await load_rules(db)), version)
    except RuleError:
        log.exception("stored postmaster filters do not compile; keeping the previous ones")
        return LoadedRules(loaded.compiled, version)
