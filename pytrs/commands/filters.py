"""`pytrs filters export|import|test`: postmaster filter rules as TOML, and a dry run on a mail.

`import` validates the whole file (every bad rule reported with its name and field, including
set values the database knows no such name for) and changes nothing unless all of it is valid;
`test` shows, for one mail, each rule matched or not and why, the control headers in force and
the routing decision, changing nothing, and refuses while a stored rule sets such a value.
Both warn about values taken from the mail, which can only be checked when one matches.
Exit codes: 0 done, 1 refused (nothing changed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from pytrs.commands.database import opened
from pytrs.commands.stdin import read_stdin
from pytrs.commands.tomlfile import read_toml
from pytrs.config import Config
from pytrs.postmaster.filter_rules import check_rules, save_rules
from pytrs.postmaster.filter_toml import read_rules, rules_to_toml
from pytrs.postmaster.filters import CompiledRules, Problem, Rule, RuleError
from pytrs.schema.filter_repo import load_rules


def add_parser(sub: argparse._SubParsersAction) -> None:
    filters = sub.add_parser("filters", help="postmaster filter rules")
    actions = filters.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="print the stored rules as TOML")
    export.add_argument("--output", help="write to this file instead of stdout")
    load = actions.add_parser("import", help="replace the stored rules with a TOML file")
    load.add_argument("file")
    test = actions.add_parser("test", help="show what the rules do with a mail (changes nothing)")
    test.add_argument("file", help="an .eml file, or - for stdin")
    test.add_argument(
        "--recipient", default="", help="envelope recipient, as if delivered to that address"
    )
    test.add_argument(
        "--trusted", action="store_true", help="honour the mail's own X-PyTRS-* headers"
    )


def run(config: Config, args: argparse.Namespace) -> int:
    if args.action == "import":
        return _import(config, args.file)
    if args.action == "export":
        stored = asyncio.run(_stored(config))
        text = rules_to_toml(stored)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    raw = read_stdin() if args.file == "-" else Path(args.file).read_bytes()
    lines, problems = asyncio.run(_dry_run(config, raw, args.trusted, args.recipient))
    if problems:
        print(
            "filters: the stored rules would not work as they are; fix them and import again:",
            file=sys.stderr,
        )
        print("\n".join(str(p) for p in problems), file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


async def _dry_run(
    config: Config, raw: bytes, trusted: bool, recipient: str
) -> tuple[list[str], list[Problem]]:
    """The dry run's lines, or none and the problems of the stored rules."""
    async with opened(config) as db:
        problems, warnings = await check_rules(db, await load_rules(db))
        _warn(warnings)
        if problems:
            return [], problems
        # Here, not at the top: the whole postmaster, which no other command loads.
        from pytrs.postmaster.dryrun import describe, dry_run

        run = await dry_run(config, db, raw, trusted=trusted, recipient=recipient)
        return describe(run), []


def _warn(warnings: Sequence[Problem]) -> None:
    for warning in warnings:
        print(f"filters: warning: {warning}", file=sys.stderr)


def _import(config: Config, file: str) -> int:
    # Malformed rules and those that do not compile are named together, in one answer.
    rules, problems = read_rules(read_toml(file, "filters"))
    if problems:  # refused whatever the database says; no need to open it
        try:
            CompiledRules.compile(rules)
        except RuleError as exc:
            problems += exc.problems
        return _refuse(file, problems)

    async def store() -> list[Problem]:
        async with opened(config) as db:
            found, warnings = await save_rules(db, rules)
            _warn(warnings)
            return found

    found = asyncio.run(store())
    if found:
        return _refuse(file, found)
    print(f"{len(rules)} rule(s) imported")
    return 0


def _refuse(file: str, problems: Sequence[Problem]) -> int:
    print(f"filters: {file} not imported, nothing changed:", file=sys.stderr)
    print("\n".join(str(p) for p in problems), file=sys.stderr)
    return 1


async def _stored(config: Config) -> list[Rule]:
    async with opened(config) as db:
        return await load_rules(db)
