"""Postmaster filter rules as plain records: what `pytrs filters import` reads, the database
stores and the postmaster compiles.

`schema.filter_repo` stores and loads these records as they are; `postmaster.filters` validates
and compiles them (RE2, control-header names) before they are stored and when a worker loads
them. Znuny's `postmaster_filter` table holds one row per match or set row of a rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MatchRow:
    """A condition: `header` ("Body" = the decoded body) must (or, negated, must not) match."""

    header: str
    value: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class SetRow:
    """An action: write `value` (after placeholder substitution) into control header `header`."""

    header: str
    value: str


@dataclass(frozen=True, slots=True)
class Rule:
    """A named postmaster filter: all match rows AND-ed, then every set row applied."""

    name: str
    match: tuple[MatchRow, ...]
    set: tuple[SetRow, ...]
    stop: bool = False
