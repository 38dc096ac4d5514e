"""Set values of filter rules checked against the names the database knows.

Place in the flow: `pytrs filters import` and `pytrs filters test`, before rules reach the
worker. A rule that sets `X-PyTRS-Priority: high` (no such priority) would be stored and then do
nothing at mail time but note it in the trace; here it is refused with the rule and field
named. Which header takes which kind of name is `control.value_problem`'s table; the names come
from `schema.names_repo`. A value with a placeholder is only known at mail time, so it gets a
warning instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from pytrs.postmaster.control import canonical, value_kind, value_problem
from pytrs.postmaster.filters import Problem, Rule, has_placeholder


def check_set_values(
    rules: Sequence[Rule], names: Mapping[str, Collection[str]]
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings): values that cannot work, and values that cannot be checked."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for rule in rules:
        for index, row in enumerate(rule.set):
            header = canonical(row.header)
            if header is None:
                continue  # not a control header: `CompiledRules.compile` reports it
            where = f"set[{index}]"
            checked = value_kind(header) is not None
            if has_placeholder(row.value) and checked:
                why = f"{row.value!r} takes text from the mail; checked only when a mail matches"
                warnings.append(Problem(rule.name, f"{where}.value", why))
                continue
            problem = value_problem(header, row.value, names)
            if problem is not None:
                # A dynamic field that does not exist is the header's fault, not the value's.
                field = "value" if checked else "header"
                problems.append(Problem(rule.name, f"{where}.{field}", problem))
    return problems, warnings
