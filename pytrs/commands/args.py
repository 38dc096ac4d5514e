"""Argument parsing shared by every `pytrs` command: the parser class, the options every
subcommand accepts, and argument types that reject what the database cannot hold.

Place in the flow: the first thing `pytrs.cli.main` does. A mistake in the arguments becomes a
UsageError (one line, exit 2, or 75 for `deliver`) instead of argparse's own exit, so that one
place decides how every failure is reported.
"""

from __future__ import annotations

import argparse
from typing import Any

# Row ids are BIGINT on PostgreSQL and INTEGER (64-bit) on SQLite: anything larger can name no
# row and would reach the driver as an overflow.
MAX_ID = 2**63 - 1


class UsageError(Exception):
    """The command line is wrong; the message says what and where to look."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of printing usage and exiting 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def row_id(text: str) -> int:
    """An id of a stored row: a whole number from 1 to MAX_ID."""
    return _whole_number(text, 1)


def limit(text: str) -> int:
    """A number of rows to show: a whole number from 1 to MAX_ID."""
    return _whole_number(text, 1)


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = None
    if value is None or not least <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from {least} to {MAX_ID}, not {text!r}"
        )
    return value


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Options that work before the subcommand and, on every subcommand, after it too.

    `pytrs deliver --config F` is how a pipe line is naturally written; refusing it made Postfix
    bounce mail. The subcommands' copies default to SUPPRESS so that they only set a value when
    given, never overwrite one given before the subcommand.
    """
    _add(parser, top=True)
    for sub in _subparsers(parser):
        _add(sub, top=False)


def _add(parser: argparse.ArgumentParser, *, top: bool) -> None:
    unset: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--config", metavar="FILE", **unset,
        help="configuration file (default: $PYTRS_CONFIG, else ./pytrs.toml)",
    )  # fmt: skip
    parser.add_argument(
        "--defaults", action="store_true", **unset,
        help="with no configuration file, use the built-in defaults even to write",
    )  # fmt: skip
    parser.add_argument(
        "--debug", action="store_true", **unset, help="show the traceback of an error"
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to one parser
                found.append(sub)
                found.extend(_subparsers(sub))
    return found


def command_of(argv: list[str]) -> str:
    """The subcommand named in `argv` even when it does not parse (for `deliver`'s exit code)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return ""
