"""Environment overrides: ``PYTRS_<SECTION>_<KEY>`` replaces ``[section] key`` from the file.

Place in the flow: the first step of ``parse_config``; the overridden values then go through
the same type and rule checks as the file's. Only the ``[section]`` tables can be overridden,
not the ``[[array]]`` entries. A variable with the prefix that names no section and key is an
error, as an unknown key in the file is: a misspelt override would otherwise be silently
ignored. The few other variables that share the prefix are listed here.
"""

import dataclasses
import difflib
import math
import typing
from collections.abc import Mapping
from typing import Any

from pytrs.config.errors import ErrorList, dotted
from pytrs.config.model import SECTIONS

PREFIX = "PYTRS_"

# Variables with the prefix that are not configuration keys: where the file is (``load``), and
# the test suite's database.
OTHER_VARIABLES = ("PYTRS_CONFIG",)
OTHER_PREFIXES = ("PYTRS_TEST_",)

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
            if _is_ours(variable):
                errors.add(variable, _unknown_variable(variable))
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


def _is_ours(variable: str) -> bool:
    """Whether ``variable`` carries the prefix and is not one of the other settings."""
    return (
        variable.startswith(PREFIX)
        and variable not in OTHER_VARIABLES
        and not variable.startswith(OTHER_PREFIXES)
    )


def _unknown_variable(variable: str) -> str:
    known = [
        f"{PREFIX}{section.upper()}_{f.name.upper()}"
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]
    close = difflib.get_close_matches(variable.upper(), known, n=1)
    hint = f"did you mean {close[0]}?" if close else "see PYTRS_<SECTION>_<KEY> in the README"
    return f"names no configuration key ({hint}); unset it"


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
