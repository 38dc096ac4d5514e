"""`pytrs import znuny URL`: copy a Znuny (>= 7.0) database into the configured one.

Place in the flow: an operator's command, run once when leaving Znuny (and again, to copy
what arrived in Znuny meanwhile: it copies nothing twice). The work is `pytrs.importers`'s;
this module opens both databases, prints the summary and maps the outcome to an exit code:
0 everything copied (or already there), 1 some rows skipped (each named with its reason) or
the import refused, 2 a mistake on the command line, 3 a database that cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pytrs.commands.args import limit
from pytrs.commands.database import opened
from pytrs.commands.failures import (
    EXIT_DATABASE,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
)
from pytrs.config import Config
from pytrs.config.model import DatabaseConfig
from pytrs.importers.report import Summary
from pytrs.importers.znuny import ImportOptions, ImportRefused, import_znuny
from pytrs.routing.ticket_number import make_generator
from pytrs.schema.database import (
    DatabaseNotFound,
    DatabaseUnavailable,
    create_database,
    probe,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("import", help="copy another system's database into this one")
    kinds = parser.add_subparsers(dest="action", required=True)
    znuny = kinds.add_parser(
        "znuny", help="copy a Znuny (>= 7.0) database: tickets, articles, queues, agents …"
    )
    znuny.add_argument(
        "url",
        metavar="URL",
        help="Znuny's database, e.g. postgresql+asyncpg://"
        "znuny@db/znuny or mysql+asyncmy://znuny@db/znuny",
    )
    znuny.add_argument(
        "--schema", default="", help="PostgreSQL: the schema of Znuny's tables (default: public)"
    )
    znuny.add_argument("--dry-run", action="store_true", help="read everything, write nothing")
    znuny.add_argument(
        "--batch", type=limit, default=100, help="tickets per transaction (default 100)"
    )
    znuny.add_argument("--json", action="store_true", help="the summary as one JSON document")


def run(config: Config, args: argparse.Namespace) -> int:
    summary = asyncio.run(_import(config, args))
    if args.json:
        print(json.dumps(summary.as_json(), ensure_ascii=False, indent=2))
    else:
        for line in summary.lines():
            print(line)
    return EXIT_FAILED if summary.skips else EXIT_OK


async def _import(config: Config, args: argparse.Namespace) -> Summary:
    try:
        make_url(args.url)
    except ArgumentError:
        raise CommandError(
            f"import znuny: {args.url!r} is not a database URL "
            "(e.g. postgresql+asyncpg://user@host/znuny)",
            EXIT_USAGE,
        ) from None
    if config.database.mode != "pytrs":
        raise CommandError(
            'import znuny: copies into pytrs\'s own database ([database] mode = "pytrs"); '
            'beside Znuny (mode = "znuny") pytrs already works on Znuny\'s tables',
            EXIT_USAGE,
        )
    ticket = config.ticket
    options = ImportOptions(
        numbers=make_generator(
            ticket.number_generator,
            ticket.system_id,
            ticket.hook,
            ticket.check_system_id,
            ticket.min_counter_size,
        ),
        batch=args.batch,
        dry_run=args.dry_run,
        max_attachment_bytes=config.smtp.max_message_size,
    )
    try:
        source = create_database(
            DatabaseConfig(url=args.url, schema=args.schema), pool=False, create_missing=False
        )
    except (ImportError, NoSuchModuleError) as exc:
        raise CommandError(
            f"import znuny: no driver for {make_url(args.url).drivername} ({exc}): install it "
            "(asyncpg for PostgreSQL, asyncmy for MariaDB/MySQL)",
            EXIT_USAGE,
        ) from None
    except DatabaseNotFound as exc:
        raise CommandError(
            f"import znuny: no Znuny database at {exc.path}", EXIT_DATABASE
        ) from None
    try:
        try:
            await probe(source)
        except DatabaseUnavailable as exc:
            # probe's advice (createdb, db upgrade) is for pytrs's own database.
            why = exc.reason.split(": create it (createdb")[0]
            raise CommandError(
                f"import znuny: cannot open Znuny's database {exc.location}: {why}", EXIT_DATABASE
            ) from None
        async with opened(config) as target:
            stream = sys.stderr
            try:
                return await import_znuny(target, source, options, stream)
            except ImportRefused as exc:
                raise CommandError(f"import znuny: {exc}", EXIT_FAILED) from None
    finally:
        await source.close()
