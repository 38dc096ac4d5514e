"""Environment variables in file paths: ``password_file = "${CREDENTIALS_DIRECTORY}/pytrs_relay"``.

Place in the flow: a step of ``parse_config``, after the ``PYTRS_*`` overrides and before the
type checks. Every key whose name ends in ``_file`` (passwords, keys, certificates, the users
file, DKIM keys, OAuth2 secrets, holidays, template bodies), in any table or ``[[array]]``
entry, may name ``$NAME`` or ``${NAME}``; ``$$`` is a dollar sign. Only those keys: a ``$`` in
a password, a template or a URL means itself.

Under systemd the secrets come through ``LoadCredential=``, whose directory is known only when
the service starts (``$CREDENTIALS_DIRECTORY``); the configuration names it instead of a fixed
path. A variable that is not set (or is empty) is an error naming the key and the variable: an
empty expansion would have pointed the key at a file under ``/``.
"""

import re
from collections.abc import Mapping
from typing import Any

from pytrs.config.errors import ErrorList, dotted

SUFFIX = "_file"
_REFERENCE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$))"
)
_HINTS = {
    "CREDENTIALS_DIRECTORY": "run under systemd with LoadCredential= or give a path",
}


def expand_paths(data: Any, environ: Mapping[str, str], errors: ErrorList, path: str = "") -> Any:
    """Return a copy of ``data`` with the variables in its ``*_file`` values replaced.

    A value that names an unset variable, or holds a ``$`` that starts no reference, is
    recorded in ``errors`` and left as it was (the type checks then pass it; the error stops
    the configuration anyway).
    """
    if isinstance(data, Mapping):
        out = {}
        for key, value in data.items():
            where = dotted(path, key)
            if isinstance(key, str) and key.endswith(SUFFIX) and isinstance(value, str):
                out[key] = _expand(value, environ, errors, where)
            else:
                out[key] = expand_paths(value, environ, errors, where)
        return out
    if isinstance(data, list | tuple):
        return [
            expand_paths(item, environ, errors, dotted(path, index))
            for index, item in enumerate(data)
        ]
    return data


def _expand(value: str, environ: Mapping[str, str], errors: ErrorList, key: str) -> str:
    if "$" not in value:
        return value
    problems: list[str] = []

    def replace(found: re.Match[str]) -> str:
        if found["dollar"]:
            return "$"
        name = found["braced"] or found["bare"]
        if environ.get(name):
            return environ[name]
        hint = _HINTS.get(name, "set it, or give the path without it")
        problems.append(f"${{{name}}} is not set; {hint}")
        return found[0]

    expanded = _REFERENCE.sub(replace, value)
    if "$" in _REFERENCE.sub("", value):
        problems.append(
            f"a '$' that starts no variable in {value!r}: write $NAME or ${{NAME}}, "
            "and $$ for a dollar sign"
        )
    for problem in problems:
        errors.add(key, problem)
    return value if problems else expanded
