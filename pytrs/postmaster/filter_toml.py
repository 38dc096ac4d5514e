"""Postmaster filter rules as TOML: the `[[filters]]` file of `pytrs filters import|export`.

Reading validates the whole file and reports every problem with the rule's name and field
(`RuleError`), so an import is all or nothing; writing produces TOML that reads back to the
same rules. The rules themselves and their semantics are in `filters`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytrs.postmaster.filters import MatchRow, Problem, Rule, RuleError, SetRow


def rules_from_toml(data: Mapping[str, Any]) -> list[Rule]:
    """Rules from parsed `[[filters]]` TOML (SPEC S3); raises RuleError listing all problems."""
    rules, problems = read_rules(data)
    if problems:
        raise RuleError(problems)
    return rules


def read_rules(data: Mapping[str, Any]) -> tuple[list[Rule], list[Problem]]:
    """The well-formed rules of parsed `[[filters]]` TOML and the problems of the others, so
    that an import can also compile the well-formed ones and name every problem at once."""
    problems: list[Problem] = []
    for key in data:
        if key != "filters":
            problems.append(Problem("(file)", key, "unknown key"))
    tables = data.get("filters", [])
    if not isinstance(tables, list):
        problems.append(Problem("(file)", "filters", "must be an array of tables [[filters]]"))
        tables = []
    rules = [_rule_from_table(t, i, problems) for i, t in enumerate(tables)]
    return [r for r in rules if r is not None], problems


_RULE_KEYS = {"name", "stop", "match", "set"}
_MATCH_KEYS = {"header", "value", "not"}
_SET_KEYS = {"header", "value"}


def _rule_from_table(table: Any, index: int, problems: list[Problem]) -> Rule | None:
    if not isinstance(table, Mapping):
        problems.append(Problem(f"#{index + 1}", "filters", "must be a table"))
        return None
    name = table.get("name")
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    before = len(problems)
    _check_keys(table, _RULE_KEYS, label, "", problems)
    if not isinstance(name, str):
        problems.append(Problem(label, "name", "required, a string"))
    stop = table.get("stop", False)
    if not isinstance(stop, bool):
        problems.append(Problem(label, "stop", "must be true or false"))
    match = [
        MatchRow(str(r.get("header", "")), str(r.get("value", "")), bool(r.get("not", False)))
        for r in _rows(table, "match", _MATCH_KEYS, label, problems)
    ]
    sets = [
        SetRow(str(r.get("header", "")), str(r.get("value", "")))
        for r in _rows(table, "set", _SET_KEYS, label, problems)
    ]
    if len(problems) > before:  # compiling it would only repeat what is wrong with it
        return None
    return Rule(label, tuple(match), tuple(sets), stop is True)


def _rows(
    table: Mapping[str, Any], kind: str, keys: set[str], rule: str, problems: list[Problem]
) -> list[Mapping[str, Any]]:
    """The valid rows of `match` or `set`, each checked for unknown, missing and mistyped keys."""
    rows = table.get(kind, [])
    if not isinstance(rows, list):
        problems.append(Problem(rule, kind, "must be an array of tables"))
        return []
    good: list[Mapping[str, Any]] = []
    for i, row in enumerate(rows):
        field = f"{kind}[{i}]"
        if not isinstance(row, Mapping):
            problems.append(Problem(rule, field, "must be a table"))
            continue
        before = len(problems)
        _check_keys(row, keys, rule, f"{field}.", problems)
        for key in ("header", "value"):
            if not isinstance(row.get(key), str):
                problems.append(Problem(rule, f"{field}.{key}", "required, a string"))
        if "not" in row and not isinstance(row["not"], bool):
            problems.append(Problem(rule, f"{field}.not", "must be true or false"))
        if len(problems) == before:
            good.append(row)
    return good


def _check_keys(
    table: Mapping[str, Any], allowed: set[str], rule: str, prefix: str, problems: list[Problem]
) -> None:
    for key in table:
        if key not in allowed:
            problems.append(Problem(rule, f"{prefix}{key}", "unknown key"))


def rules_to_toml(rules: Sequence[Rule]) -> str:
    """The rules as `[[filters]]` TOML that `rules_from_toml` reads back unchanged."""
    out: list[str] = []
    for rule in rules:
        out.append("[[filters]]")
        out.append(f"name = {_toml_str(rule.name)}")
        out.append(f"stop = {_toml_bool(rule.stop)}")
        out.append("match = [")
        for m in rule.match:
            out.append(
                f"  {{ header = {_toml_str(m.header)}, value = {_toml_str(m.value)}, "
                f"not = {_toml_bool(m.negate)} }},"
            )
        out.append("]")
        out.append("set = [")
        for s in rule.set:
            out.append(f"  {{ header = {_toml_str(s.header)}, value = {_toml_str(s.value)} }},")
        out.append("]")
        out.append("")
    return "\n".join(out)


def _toml_bool(value: bool) -> str:
    return "true" if value else "false"


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
_TOML_ESCAPES.update({"\f": "\\f", "\r": "\\r"})


def _toml_str(value: str) -> str:
    """A TOML basic string; control characters escaped as TOML requires."""
    chars = []
    for c in value:
        if c in _TOML_ESCAPES:
            chars.append(_TOML_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            chars.append(f"\\u{ord(c):04x}")
        else:
            chars.append(c)
    return '"' + "".join(chars) + '"'
