"""Postmaster filter rules between the database and the worker: checked here, stored there.

Place in the flow: `pytrs filters import` and the web's filter pages save rules with
`save_rules`, which checks the whole set as `check_rules` does (compiled with RE2, header names,
set keys among the control headers, set values against the names the database knows, values
no longer than the database holds: 200 characters beside Znuny) and
stores it only when nothing is wrong; `replace_rules` (tests, and `save_rules` itself) compiles
the set and stores set rows under their canonical `X-PyTRS-*` names; `schema.filter_repo` then
stores the plain records in one transaction. Each worker keeps the compiled rules it loaded
(`LoadedRules`) and asks `current_rules` before every batch, which recompiles only when the
table changed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pytrs.postmaster.control import canonical
from pytrs.postmaster.filter_values import check_set_values
from pytrs.postmaster.filters import CompiledRules, Problem, Rule, RuleError, SetRow
from pytrs.schema import filter_repo
from pytrs.schema.database import Database
from pytrs.schema.names_repo import valid_names

log = logging.getLogger(__name__)


async def check_rules(db: Database, rules: Sequence[Rule]) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings) of a whole rule set: what does not compile, then set values the
    database knows no such name for; warnings are values taken from the mail, which can only
    be checked when one matches."""
    problems: list[Problem] = []
    try:
        CompiledRules.compile(rules)
    except RuleError as exc:
        problems += exc.problems
    wrong, warnings = check_set_values(rules, await valid_names(db))
    too_long = _too_long(rules, await filter_repo.value_limit(db))
    return problems + wrong + too_long, warnings


def _too_long(rules: Sequence[Rule], limit: int | None) -> list[Problem]:
    """Values longer than the database stores (beside Znuny, f_value holds 200 characters):
    refused, since a cut regular expression or set value would mean something else."""
    if limit is None:
        return []
    problems = []
    for rule in rules:
        values = [("match", i, m.value) for i, m in enumerate(rule.match)]
        values += [("set", i, s.value) for i, s in enumerate(rule.set)]
        problems += [
            Problem(
                rule.name,
                f"{kind}[{i}].value",
                f"{len(value)} characters, more than the {limit} Znuny's postmaster_filter "
                "holds; shorten it",
            )
            for kind, i, value in values
            if len(value) > limit
        ]
    return problems


async def save_rules(
    db: Database, rules: Sequence[Rule], *, expected: int | None = None
) -> tuple[list[Problem], list[Problem]]:
    """Store `rules` instead of the current ones when `check_rules` finds no problem (else
    nothing changes); returns its (problems, warnings). With `expected` (the filters'
    generation when `rules` were read), raises `filter_repo.RulesChanged` and changes nothing
    when someone else saved rules since."""
    problems, warnings = await check_rules(db, rules)
    if not problems:
        await replace_rules(db, rules, expected=expected)
    return problems, warnings


async def replace_rules(
    db: Database, rules: Sequence[Rule], *, expected: int | None = None
) -> None:
    """Validate `rules` (raises RuleError listing every problem) and store them instead of the
    current ones, in one transaction (see `filter_repo.replace_rules` for `expected`)."""
    CompiledRules.compile(rules)
    canonical_rules = [_canonical_sets(rule) for rule in rules]
    await filter_repo.replace_rules(db, canonical_rules, expected=expected)


def _canonical_sets(rule: Rule) -> Rule:
    """`rule` with its X-OTRS-* set headers under their X-PyTRS-* names, as they are stored."""
    rows = tuple(SetRow(canonical(s.header) or s.header, s.value) for s in rule.set)
    return dataclasses.replace(rule, set=rows)


@dataclass(frozen=True, slots=True)
class LoadedRules:
    """Compiled rules and the table version they came from (generation, row count, highest id)."""

    compiled: CompiledRules
    version: tuple[int, int, int]


NO_RULES = LoadedRules(CompiledRules.compile([]), (-1, -1, -1))


async def current_rules(db: Database, loaded: LoadedRules) -> LoadedRules:
    """`loaded` while the table is unchanged (one cheap query), else freshly compiled rules.

    A stored rule that no longer compiles (edited by hand) leaves the previous rules in force,
    logged, rather than none.
    """
    version = await filter_repo.rules_version(db)
    if version == loaded.version:
        return loaded
    try:
        return LoadedRules(CompiledRules.compile(await filter_repo.load_rules(db)), version)
    except RuleError:
        log.exception("stored postmaster filters do not compile; keeping the previous ones")
        return LoadedRules(loaded.compiled, version)
