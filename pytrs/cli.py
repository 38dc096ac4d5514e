"""The `pytrs` console script: run, deliver, db, config, inbox and parse commands (SPEC S2).

Each command loads the configuration explicitly and hands it to the part that does the work;
this module only parses arguments, prints, and maps outcomes to exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from pytrs.allocator import release_big_buffers
from pytrs.commands import accounts
from pytrs.commands import filters as filters_command
from pytrs.commands import inbox as inbox_command
from pytrs.commands import outbox as outbox_command
from pytrs.commands import parse as parse_command
from pytrs.commands import responses as responses_command
from pytrs.config import Config, ConfigError, load_config
from pytrs.postmaster.respond import notification_templates
from pytrs.responders.dkim import DkimSigner
from pytrs.responders.responses import specs_from_config
from pytrs.schema import migrate
from pytrs.schema.database import create_database

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytrs", description="pytrs mail gateway")
    parser.add_argument(
        "--config", help="configuration file (default: $PYTRS_CONFIG, ./pytrs.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument(
        "--role",
        action="append",
        choices=("gateway", "worker", "sender", "scheduler", "web"),
        help="limit this process to some services (repeatable)",
    )
    # Used by the daemon for its worker children (see pytrs.worker_processes).
    run.add_argument("--notify-stdin", action="store_true", help=argparse.SUPPRESS)

    deliver = sub.add_parser("deliver", help="store one message read from stdin (MTA pipe)")
    deliver.add_argument("--queue", default="", help="put new tickets into this queue")
    deliver.add_argument("--recipient", default="", help="envelope recipient (e.g. ${recipient})")
    deliver.add_argument("--sender", default="", help="envelope sender (e.g. ${sender})")
    deliver.add_argument("--untrusted", action="store_true", help="ignore control headers")

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=("upgrade", "check"))

    cfg = sub.add_parser("config", help="configuration")
    cfg.add_argument("action", choices=("check",))

    filters_command.add_parser(sub)
    responses_command.add_parser(sub)
    outbox_command.add_parser(sub)

    accounts = sub.add_parser("accounts", help="mail accounts: health and progress")
    accounts.add_argument("--json", action="store_true")

    box = sub.add_parser("inbox", help="the inbound queue and the quarantine")
    box_sub = box.add_subparsers(dest="action", required=True)
    listing = box_sub.add_parser("list", help="list inbox rows")
    states = ("pending", "done", "duplicate", "ignored", "quarantined", "all")
    listing.add_argument("--state", choices=states, default="all")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    show = box_sub.add_parser("show", help="show one inbox row with its error and trace")
    show.add_argument("id", type=int)
    show.add_argument("--raw", action="store_true", help="print the raw message only")
    retry = box_sub.add_parser("retry", help="re-queue quarantined messages")
    retry.add_argument("ids", type=int, nargs="*")
    retry.add_argument("--all", action="store_true", help="every quarantined message")

    parse = sub.add_parser("parse", help="print how the parser reads mail files (no database)")
    parse.add_argument("files", nargs="+", metavar="FILE.eml", help='mail files ("-" = stdin)')
    output = parse.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="pretty JSON (a list for many files)")
    output.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for error in exc.errors:
            print(f"config: {error}", file=sys.stderr)
        if args.command != "parse":
            return 75 if args.command == "deliver" else EXIT_USAGE
        # A debugging tool needs only the parser limits; the built-in ones will do.
        print("config: using the built-in parser limits", file=sys.stderr)
        config = Config()
    logging.basicConfig(
        level=config.daemon.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd logs every connection at INFO; pytrs logs what matters about each message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # Before any mail is read: a 25 MB mail must not leave its buffers resident (see allocator).
    release_big_buffers()
    handlers = {
        "run": _run, "deliver": _deliver, "db": _db, "config": _config, "inbox": inbox_command.run,
        "accounts": accounts.run,
        "parse": parse_command.run,
        "filters": filters_command.run,
        "responses": responses_command.run,
        "outbox": outbox_command.run,
    }  # fmt: skip
    return handlers[args.command](config, args)


def _run(config: Config, args: argparse.Namespace) -> int:
    from pytrs.daemon import ROLES, StartupError, run_daemon

    logging.getLogger("alembic").setLevel(logging.WARNING)  # the start-up schema check
    try:
        roles = tuple(args.role) if args.role else ROLES
        return run_daemon(config, roles, notify_stdin=args.notify_stdin)
    except StartupError as exc:
        print(f"pytrs: {exc}", file=sys.stderr)
        return 1


def _deliver(config: Config, args: argparse.Namespace) -> int:
    from pytrs.gateway.pipe import deliver

    raw = sys.stdin.buffer.read()
    return deliver(
        config, raw, queue=args.queue, recipient=args.recipient, sender=args.sender,
        untrusted=args.untrusted,
    )  # fmt: skip


def _config(config: Config, args: argparse.Namespace) -> int:
    # What the daemon checks at start beyond the file's syntax: templates compile, body files
    # exist, keys load — so a reload fails here and not in production.
    errors: list[str] = []
    for check in (
        lambda: specs_from_config(config),
        lambda: DkimSigner.from_config(config.dkim_keys),
        lambda: notification_templates(config),
    ):
        try:
            check()
        except ConfigError as exc:
            errors.extend(exc.errors)
    for error in errors:
        print(f"config: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"configuration OK ({config.source or 'built-in defaults'})")
    return 0


def _db(config: Config, args: argparse.Namespace) -> int:
    async def go() -> int:
        db = create_database(config.database, pool=False)
        try:
            if args.action == "upgrade":
                await migrate.upgrade(db)
                print(f"database at {migrate.head_revision()}")
                return 0
            at_head, current, head = await migrate.is_at_head(db)
            print(f"database at {current or 'nothing'}; head is {head}")
            return 0 if at_head else 1
        finally:
            await db.close()

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
