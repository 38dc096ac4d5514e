"""Turning parsed TOML (plain dicts and lists) into the frozen model, collecting every error.

Place in the flow: ``load_config`` reads the file → ``parse_config`` (here) applies environment
overrides, checks keys, types and field rules, runs the cross-checks → the ``Config`` that the
daemon passes to each service. It takes any mapping, so tests and ``pytrs config check`` can
feed it data directly.
"""

import dataclasses
import datetime
import difflib
import math
import typing
from collections.abc import Mapping
from typing import Any

from pytrs.config.crosscheck import cross_check
from pytrs.config.environ import apply_environ
from pytrs.config.errors import ErrorList, dotted
from pytrs.config.expand import expand_paths
from pytrs.config.model import ARRAYS, SECTIONS, Config

# Returned when a value failed its type check (the error is already recorded); a private
# sentinel rather than None so that it can never be mistaken for a configured value.
_INVALID: Any = object()


def parse_config(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None, source: str = ""
) -> Config:
    """Build a Config from TOML-shaped ``data`` plus ``PYTRS_<SECTION>_<KEY>`` overrides, with
    ``$NAME``/``${NAME}`` of ``environ`` expanded in the ``*_file`` paths (``expand``).

    Unlike ``load_config``, ``environ=None`` means no overrides: this function depends only
    on its arguments. Raises ConfigError listing every problem found.
    """
    errors = ErrorList()
    merged = apply_environ(data, environ or {}, errors)
    merged = expand_paths(merged, environ or {}, errors)
    for key in merged:
        if key not in SECTIONS and key not in ARRAYS:
            errors.add(key, _unknown(key, [*SECTIONS, *ARRAYS]))
    tables = {
        name: build(cls, merged.get(name, {}), name, errors) or cls()
        for name, cls in SECTIONS.items()
    }
    arrays: dict[str, tuple[Any, ...]] = {}
    positions: dict[str, tuple[int, ...]] = {}
    for name, cls in ARRAYS.items():
        entries = _build_array(cls, merged.get(name, []), name, errors)
        positions[name] = tuple(index for index, _ in entries)
        arrays[name] = tuple(entry for _, entry in entries)
    config = Config(**{**tables, **arrays, "source": source})
    cross_check(config, positions, merged, errors)
    errors.raise_if_any(source)
    return config


def build(cls: type, raw: object, path: str, errors: ErrorList) -> Any:
    """Return ``cls`` built from the table ``raw``, or None if a required field is unusable.

    An invalid optional field falls back to its default (its error is already recorded), so
    that the cross-checks still see the rest of the entry and can report their own findings.
    """
    if not isinstance(raw, Mapping):
        errors.add(path, f"must be a table, not {_kind(raw)}")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            errors.add(dotted(path, key), _unknown(key, list(fields)))
    values: dict[str, Any] = {}
    complete = True
    for name, field in fields.items():
        key = dotted(path, name)
        required = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        if name not in raw:
            if required:
                errors.add(key, "required key missing")
                complete = False
            continue
        value = _convert(raw[name], hints[name], key, errors)
        if value is _INVALID or not _passes_rule(field, value, key, errors):
            complete = complete and not required
            continue
        values[name] = value
    return cls(**values) if complete else None


def _build_array(cls: type, raw: object, path: str, errors: ErrorList) -> list[tuple[int, Any]]:
    """Build each ``[[path]]`` entry, keeping its original index for error messages."""
    if not isinstance(raw, list | tuple):
        errors.add(path, f"must be an array of tables ([[{path}]]), not {_kind(raw)}")
        return []
    built = [
        (index, build(cls, item, dotted(path, index), errors)) for index, item in enumerate(raw)
    ]
    return [(index, entry) for index, entry in built if entry is not None]


def _convert(value: object, hint: Any, key: str, errors: ErrorList) -> Any:
    """Check ``value`` against the field type; lists become tuples, ints widen to float."""
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            errors.add(key, f"must be an array, not {_kind(value)}")
            return _INVALID
        items = [
            _convert(item, typing.get_args(hint)[0], dotted(key, i), errors)
            for i, item in enumerate(value)
        ]
        return _INVALID if any(item is _INVALID for item in items) else tuple(items)
    if dataclasses.is_dataclass(hint):  # a nested table, e.g. [[calendars]] hours
        built = build(typing.cast(type, hint), value, key, errors)
        return _INVALID if built is None else built
    # bool is a subclass of int in Python, but `workers = true` is a mistake, not 1.
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is float and is_number and math.isfinite(typing.cast(float, value)):
        return float(typing.cast(float, value))
    if hint is int and is_number and isinstance(value, int):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    errors.add(key, f"must be {_EXPECTED[hint]}, not {_kind(value)}")
    return _INVALID


_EXPECTED = {
    str: "a string",
    int: "an integer",
    float: "a finite number",
    bool: "a boolean (true or false)",
}


def _passes_rule(field: dataclasses.Field[Any], value: Any, key: str, errors: ErrorList) -> bool:
    check = field.metadata.get("check")
    if check is None:
        return True
    if field.metadata.get("each"):
        problems = [(dotted(key, i), check(item)) for i, item in enumerate(value)]
    else:
        problems = [(key, check(value))]
    for where, problem in problems:
        if problem is not None:
            errors.add(where, problem)
    return all(problem is None for _, problem in problems)


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def _kind(value: object) -> str:
    """Name a value's type the way the TOML documentation does."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, datetime.date | datetime.time):
        return "a date/time"
    return type(value).__name__
