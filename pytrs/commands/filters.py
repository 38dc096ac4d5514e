"""`pytrs filters export|import|test`: postmaster filter rules as TOML, and a dry run on a mail.

`import` validates the whole file (every bad rule reported with its name and field) and
changes nothing unless all of it is valid; `test` shows, for one mail, each rule matched or
not and why, and the control headers the rules would set, changing nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tomllib
from pathlib import Path

from pytrs.config import Config
from pytrs.parsers import parse_mail
from pytrs.postmaster.filters import (
    CompiledRules,
    Rule,
    RuleError,
    rules_from_toml,
    rules_to_toml,
)
from pytrs.schema.database import create_database
from pytrs.schema.filter_repo import load_rules, replace_rules


def add_parser(sub: argparse._SubParsersAction) -> None:
    filters = sub.add_parser("filters", help="postmaster filter rules")
    actions = filters.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="print the stored rules as TOML")
    export.add_argument("--output", help="write to this file instead of stdout")
    load = actions.add_parser("import", help="replace the stored rules with a TOML file")
    load.add_argument("file")
    test = actions.add_parser("test", help="show what the rules do with a mail (changes nothing)")
    test.add_argument("file", help="an .eml file, or - for stdin")


def run(config: Config, args: argparse.Namespace) -> int:
    if args.action == "import":
        return _import(config, args.file)
    stored = asyncio.run(_stored(config))
    if args.action == "export":
        text = rules_to_toml(stored)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    mail = parse_mail(raw, config.parser.limits())
    result = CompiledRules.compile(stored).apply(mail.headers, mail.body)
    for line in result.explanations:
        print(line)
    print("control headers set:" if result.control else "control headers set: none")
    for name, value in sorted(result.control.items()):
        print(f"  {name}: {value}")
    return 0


def _import(config: Config, file: str) -> int:
    try:
        rules = rules_from_toml(tomllib.loads(Path(file).read_text(encoding="utf-8")))
        CompiledRules.compile(rules)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        print(f"filters: cannot read {file}: {exc}", file=sys.stderr)
        return 1
    except RuleError as exc:
        print(f"filters: {file} not imported, nothing changed:", file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return 1

    async def store() -> None:
        db = create_database(config.database, pool=False)
        try:
            await replace_rules(db, rules)
        finally:
            await db.close()

    asyncio.run(store())
    print(f"{len(rules)} rule(s) imported")
    return 0


async def _stored(config: Config) -> list[Rule]:
    db = create_database(config.database, pool=False)
    try:
        return await load_rules(db)
    finally:
        await db.close()
