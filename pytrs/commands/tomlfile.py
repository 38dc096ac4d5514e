"""Reading the TOML file an `import` command is given, with the failures worded alike.

A file that cannot be read at all (missing, a directory, no permission) is a mistake on the
command line, exit 2 as for any file named there; a file that reads but is not TOML in UTF-8
is an import file rejected, exit 1 (README, exit-code table). Without this, a binary file
escaped as a UnicodeDecodeError: an internal error (70) instead of an answer.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pytrs.commands.failures import EXIT_FAILED, EXIT_USAGE, CommandError


def read_toml(file: str, command: str) -> dict[str, Any]:
    """The parsed contents of `file`, or a CommandError naming `command` and what is wrong."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(
            f"{command}: {file} not imported, nothing changed: not UTF-8 text ({exc.reason})",
            EXIT_FAILED,
        ) from exc
    except OSError as exc:
        raise CommandError(
            f"{command}: cannot read {file}: {exc.strerror or exc}", EXIT_USAGE
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CommandError(
            f"{command}: {file} not imported, nothing changed: TOML syntax error: {exc}",
            EXIT_FAILED,
        ) from exc
