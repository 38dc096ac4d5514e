"""The `pytrs` console script: run, deliver, db, config, inbox, tickets … commands (SPEC S2).

Each command loads the configuration explicitly and hands it to the part that does the work;
this module only parses arguments, prints, and maps outcomes to exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from pytrs.commands import accounts
from pytrs.commands import args as arg_types
from pytrs.commands import db as db_command
from pytrs.commands import doctor as doctor_command
from pytrs.commands import filters as filters_command
from pytrs.commands import imports as imports_command
from pytrs.commands import inbox as inbox_command
from pytrs.commands import outbox as outbox_command
from pytrs.commands import parse as parse_command
from pytrs.commands import queues as queues_command
from pytrs.commands import responses as responses_command
from pytrs.commands import smtp as smtp_command
from pytrs.commands import tickets as tickets_command
from pytrs.commands import tokens as tokens_command
from pytrs.commands import users as users_command
from pytrs.commands.args import Parser, add_global_options, command_of
from pytrs.commands.failures import (
    EXIT_PIPE,
    EXIT_USAGE,
    CommandError,
    StartupRefused,
    explain,
    is_output_error,
    silence_stdout,
)
from pytrs.commands.output import add_json_options
from pytrs.config import Config, ConfigError, load_config
from pytrs.config.crosscheck import config_warnings
from pytrs.gateway.pipe import EX_TEMPFAIL
from pytrs.preflight import check_startup
from pytrs.runtime.allocator import release_big_buffers
from pytrs.runtime.logs import configure_logging, label_process


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pytrs", description="pytrs mail gateway")
    parser.add_argument("--version", action="version", version=f"pytrs {_version()}")
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
    db.add_argument("action", choices=("upgrade", "check", "attach"))

    cfg = sub.add_parser("config", help="configuration")
    cfg.add_argument("action", choices=("check",))

    filters_command.add_parser(sub)
    responses_command.add_parser(sub)
    outbox_command.add_parser(sub)
    tickets_command.add_parser(sub)
    queues_command.add_parser(sub)
    users_command.add_parser(sub)
    tokens_command.add_parser(sub)
    smtp_command.add_parser(sub)
    doctor_command.add_parser(sub)
    imports_command.add_parser(sub)

    accounts = sub.add_parser("accounts", help="mail accounts: health and progress")
    add_json_options(accounts)

    box = sub.add_parser("inbox", help="the inbound queue and the quarantine")
    box_sub = box.add_subparsers(dest="action", required=True)
    listing = box_sub.add_parser("list", help="list inbox rows, newest first")
    states = ("pending", "done", "duplicate", "ignored", "quarantined", "discarded", "all")
    listing.add_argument("--state", choices=states, default="all")
    listing.add_argument("--limit", type=arg_types.limit, default=50, help="at most this many rows")
    add_json_options(listing)
    show = box_sub.add_parser("show", help="show one inbox row with its error and trace")
    show.add_argument("id", type=arg_types.row_id)
    show.add_argument("--raw", action="store_true", help="print the raw message only")
    show.add_argument(
        "--original", action="store_true",
        help="print the mail as received, kept when it was replaced by a corrected copy",
    )  # fmt: skip
    retry = box_sub.add_parser("retry", help="re-queue quarantined messages")
    retry.add_argument("ids", type=arg_types.row_id, nargs="*")
    retry.add_argument("--all", action="store_true", help="every quarantined message")
    discard = box_sub.add_parser("discard", help="set quarantined messages aside for good")
    discard.add_argument("ids", type=arg_types.row_id, nargs="+")
    discard.add_argument("--reason", required=True, help="why (kept in the row, shown by show)")
    replace = box_sub.add_parser(
        "replace", help="queue a corrected copy of a quarantined mail (the original is kept)"
    )
    replace.add_argument("id", type=arg_types.row_id)
    replace.add_argument("file", metavar="FILE", help='the corrected mail ("-" = stdin)')
    edit = box_sub.add_parser(
        "edit", help="edit a copy of a quarantined mail in $VISUAL/$EDITOR, then queue it"
    )
    edit.add_argument("id", type=arg_types.row_id)

    parse = sub.add_parser("parse", help="print how the parser reads mail files (no database)")
    parse.add_argument("files", nargs="+", metavar="FILE.eml", help='mail files ("-" = stdin)')
    output = parse.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="pretty JSON (a list for many files)")
    output.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    parse.add_argument(
        "--summary",
        action="store_true",
        help="only counts over all files: bounces by format, auto-replies, lists, loops, "
        "warnings by kind (with --json: as one object)",
    )
    # Last, so that every subcommand built above (and in the command modules) gets them.
    add_global_options(parser)
    return parser


def _version() -> str:
    try:
        return metadata.version("pytrs")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure becomes one line on stderr and a documented exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    # For `deliver` every failure is temporary: a mistyped pipe line must defer mail (75),
    # never bounce it, whatever went wrong — even arguments argparse could not read.
    deliver = command_of(words) == "deliver"
    debug = "--debug" in words
    try:
        status = _main(words)
        # Flushed here, not at interpreter exit, so that a closed pipe is caught below.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Our reader went away (`pytrs parse … | head`): stop quietly, as Unix tools do. Only
        # stdout can raise it here; the database drivers report broken sockets as their own
        # errors, which SQLAlchemy wraps.
        silence_stdout()
        return EXIT_PIPE
    except (Exception, KeyboardInterrupt) as exc:
        if debug:
            traceback.print_exc()
        failure = explain(exc)
        if is_output_error(exc):  # else the interpreter's final flush fails once more
            silence_stdout()
        lines = failure.lines
        if deliver and lines:
            lines[-1] += " (exit 75: the MTA keeps the message and retries)"
        for line in lines:
            print(f"pytrs: {line}", file=sys.stderr)
        return EX_TEMPFAIL if deliver else failure.exit_code


def _main(words: list[str]) -> int:
    args = _parser().parse_args(words)
    if args.command == "doctor":  # a configuration that does not load is one of its findings
        return doctor_command.run(args)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if args.command != "parse":
            raise
        # A debugging tool needs only the parser limits; the built-in ones will do.
        for line in explain(exc).lines:
            print(f"pytrs: {line}", file=sys.stderr)
        print("pytrs: config: using the built-in parser limits", file=sys.stderr)
        config = Config()
    if config.source and _sets_nothing(config) and _writes(args) and not args.defaults:
        raise CommandError(
            f"{config.source} sets nothing (an empty file?), so it means the built-in "
            f"defaults (SQLite var/pytrs.db under {Path.cwd()}): fill it in from "
            "config/pytrs.example.toml, or give --defaults if that is what you want",
            EXIT_USAGE,
        )
    if not config.source and _writes(args) and not args.defaults:
        raise CommandError(
            "no configuration file (none given with --config, $PYTRS_CONFIG is not set and "
            f"there is no pytrs.toml in {Path.cwd()}): give --config FILE, or --defaults "
            "to use the built-in defaults (SQLite var/pytrs.db under this directory)",
            EXIT_USAGE,
        )
    if getattr(args, "notify_stdin", False):  # a worker child: its lines go to its parent's log
        from pytrs.worker_processes import lower_priority  # the daemon's module, loaded by `run`

        label_process(f"worker {os.getpid()}")
        lower_priority()
        # Until the daemon is up and drains on SIGTERM: a child told to stop while it starts
        # would die with mail due. Its parent also closes the child's stdin, which a started
        # child reads as "drain and exit".
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Ctrl-C reaches the whole process group; the parent alone decides when a child stops.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(config.daemon)
    if (args.command, getattr(args, "action", None)) != ("db", "upgrade"):
        # Every command checks the schema; only `db upgrade` has migrations worth listing.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    # Before any mail is read: a 25 MB mail must not leave its buffers resident (see allocator).
    release_big_buffers()
    handlers = {
        "run": _run, "deliver": _deliver, "db": _db, "config": _config, "inbox": inbox_command.run,
        "accounts": accounts.run,
        "parse": parse_command.run,
        "filters": filters_command.run,
        "responses": responses_command.run,
        "outbox": outbox_command.run,
        "tickets": tickets_command.run,
        "queues": queues_command.run,
        "users": users_command.run,
        "tokens": tokens_command.run,
        "smtp": smtp_command.run,
        "import": imports_command.run,
    }  # fmt: skip
    return handlers[args.command](config, args)


def _sets_nothing(config: Config) -> bool:
    """A file (and environment) that leave every default as it is: an empty pytrs.toml, a
    copy that failed. The writing commands treat it as no file at all (they went on and
    stored mail in ./var/pytrs.db), and `config check` says so."""
    return dataclasses.replace(config, source="") == Config()


def _writes(args: argparse.Namespace) -> bool:
    """Commands that would put mail or a schema into whatever database the defaults name: the
    MTA pipe run from the wrong directory used to create ./var/pytrs.db and store mail there."""
    action = getattr(args, "action", None)
    if args.command == "import":  # a copy into the built-in defaults' database is a mistake
        return not args.dry_run
    return args.command in ("run", "deliver") or (
        args.command == "db" and action in ("upgrade", "attach")
    )


_WORKING_ROLES = ("gateway", "worker", "sender", "scheduler", "web")


def _run(config: Config, args: argparse.Namespace) -> int:
    from pytrs.daemon import ROLES, run_daemon

    roles = tuple(args.role) if args.role else ROLES
    working = set(roles) & set(_WORKING_ROLES)
    if working == {"web"} and not config.web.listen:
        working = set()
    if not working:
        # `web` with `[web] listen = ""` serves nothing: alone it started a daemon that logged
        # "pytrs started: nothing" and sat.
        raise CommandError(
            f"run --role {' '.join(roles)}: starts no service; choose among gateway, "
            "worker, sender, scheduler and web (web needs [web] listen), or give no --role "
            "for all",
            EXIT_USAGE,
        )
    try:
        # SIGHUP reads the same file again, with the environment's overrides of that moment.
        source = config.source
        loader = (lambda: load_config(source)) if source else None
        return run_daemon(config, roles, notify_stdin=args.notify_stdin, loader=loader)
    except ConfigError as exc:  # check_startup: the same lines as `pytrs config check`
        raise StartupRefused(exc.errors) from exc


def _deliver(config: Config, args: argparse.Namespace) -> int:
    from pytrs.gateway.pipe import deliver

    if sys.stdin is None:  # started with stdin closed (`<&-`): Python gives no stream at all
        raise CommandError("deliver: no standard input (it is closed): the message is read from it")
    raw = sys.stdin.buffer.read()
    return deliver(
        config, raw, queue=args.queue, recipient=args.recipient, sender=args.sender,
        untrusted=args.untrusted,
    )  # fmt: skip


def _config(config: Config, args: argparse.Namespace) -> int:
    # Exactly what `pytrs run` checks before it starts (templates compile, keys load …), so a
    # reload fails here and not in production.
    try:
        check_startup(config)
    except ConfigError as exc:
        raise StartupRefused(exc.errors) from exc
    if config.source and _sets_nothing(config):
        print(
            f"pytrs: config: warning: {config.source} sets nothing: the built-in defaults; "
            "run, deliver and db upgrade refuse it without --defaults",
            file=sys.stderr,
        )
    for warning in config_warnings(config):
        print(f"pytrs: config: warning: {warning}", file=sys.stderr)
    print(f"configuration OK ({config.source or 'built-in defaults'})")
    return 0


def _db(config: Config, args: argparse.Namespace) -> int:
    actions = {"upgrade": db_command.upgrade, "check": db_command.check,
               "attach": db_command.attach_own_tables}  # fmt: skip
    return asyncio.run(actions[args.action](config))


if __name__ == "__main__":
    sys.exit(main())
