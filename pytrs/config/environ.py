"""Environment overrides: ``PYTRS_<SECTION>_<KEY>`` replaces ``[section] key`` from the file.

Place in the flow: the first step of ``parse_config``; the overridden values then go through
the same type and rule checks as the file's. Only the ``[section]`` tables can be overridden,
not the ``[[array]]`` entries. Variables with the prefix that name no known section and key are
ignored, because the prefix is shared with other settings (``PYTRS_CONFIG``, the test suite's
``PYTRS_TEST_DATABASE_URL``).
"""

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any

from pytrs.config.errors import ErrorList, dotted
from pytrs.config.model import SECTIONS

PREFIX = "PYTRS_"

_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def apply_environ(
    data: Mapping[str, Any], environ: Mapping[str, str], errors: ErrorList
) -> dict[str, Any]:
    """Return a copy of ``data`` with the overrides from ``environ`` applied.

    A value that cannot be converted is reported under the variable's name; for the others,
    ``errors.origins`` remembers the variable so later errors mention it.
    """
    merged = dict(data)
    for variable in sorted(environ):
        target = match_variable(variable)
        if target is None:
            continue
        section, key = target
        hint = typing.get_type_hints(SECTIONS[section])[key]
        value = _from_text(environ[variable], hint)
        table = merged.get(section, {})
        if value is None:
            errors.add(variable, f"cannot be read as {_DESCRIPTION[hint]}: {environ[variable]!r}")
        elif isinstance(table, Mapping):
            # A section that is not a table is reported by the parser; nothing to merge into.
            merged[section] = {**table, key: value}
            errors.origins[dotted(section, key)] = variable
    return merged


def match_variable(variable: str) -> tuple[str, str] | None:
    """Return ``(section, key)`` named by an environment variable, or None if it names none.

    Section names contain underscores (``loop_protection``), so the split point is found by
    trying the known sections, longest first, rather than by splitting on ``_``.
    """
    if not variable.startswith(PREFIX):
        return None
    rest = variable[len(PREFIX) :]
    for section in sorted(SECTIONS, key=len, reverse=True):
        head = section.upper() + "_"
        if rest.startswith(head):
            keys = {f.name.upper(): f.name for f in dataclasses.fields(SECTIONS[section])}
            key = keys.get(rest[len(head) :])
            if key is not None:
                return section, key
    return None


_DESCRIPTION: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean (true/false, 1/0, yes/no)",
    tuple[str, ...]: "a comma-separated list",
}


def _from_text(text: str, hint: Any) -> Any:
    """Convert ``text`` to the TOML-shaped value of ``hint``; None if it cannot be."""
    if hint is str:
        return text
    if typing.get_origin(hint) is tuple:
        # A list of strings; "" is the empty list, so an override can disable a listener.
        return [item.strip() for item in text.split(",") if item.strip()]
    if hint is bool:
        return _BOOLEANS.get(text.strip().lower())
    try:
        number = int(text) if hint is int else float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
