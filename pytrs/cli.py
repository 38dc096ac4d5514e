"""The `pytrs` console script: run, deliver, db, config, inbox and parse commands (SPEC S2).

Each command loads the configuration explicitly and hands it to the part that does the work;
this module only parses arguments, prints, and maps outcomes to exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pytrs.config import Config, ConfigError, load_config
from pytrs.parsers import ParsedMail, parse_mail
from pytrs.schema import inbox_repo, migrate
from pytrs.schema.database import create_database
from pytrs.schema.tables import inbox

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

    accounts = sub.add_parser("accounts", help="mail accounts: health and progress")
    accounts.add_argument("--json", action="store_true")

    box = sub.add_parser("inbox", help="the inbound queue and the quarantine")
    box_sub = box.add_subparsers(dest="action", required=True)
    listing = box_sub.add_parser("list", help="list inbox rows")
    listing.add_argument("--state", choices=("pending", "done", "ignored", "quarantined", "all"),
                         default="all")  # fmt: skip
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
    handlers = {
        "run": _run, "deliver": _deliver, "db": _db, "config": _config, "inbox": _inbox,
        "accounts": _accounts,
        "parse": _parse,
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


def _accounts(config: Config, args: argparse.Namespace) -> int:
    from pytrs.schema import mailbox_repo

    async def go() -> list[dict[str, object]]:
        db = create_database(config.database, pool=False)
        try:
            return await mailbox_repo.states(db)
        finally:
            await db.close()

    found = {str(s["account"]): s for s in asyncio.run(go())}
    rows = []
    for account in config.mail_accounts:
        state = found.get(account.name, {})
        rows.append({
            "account": account.name, "type": account.type, "host": account.host,
            "folder": account.folder, "mode": account.mode,
            "last_success_at": state.get("last_success_at"),
            "last_error": state.get("last_error"), "last_error_at": state.get("last_error_at"),
            "messages_fetched": state.get("messages_fetched", 0),
            "next_attempt_at": state.get("next_attempt_at"), "owner": state.get("owner"),
            "skipped": json.loads(str(state["skipped"])) if state.get("skipped") else [],
        })  # fmt: skip
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
        return 0
    if not rows:
        print("no [[mail_accounts]] configured")
    for row in rows:
        print(
            f"{row['account']}  ({row['type']} {row['host']} {row['folder']}, mode {row['mode']})"
        )
        print(
            f"  fetched: {row['messages_fetched']}   last success: {row['last_success_at'] or '-'}"
        )
        if row["last_error"]:
            print(f"  last error ({row['last_error_at']}): {row['last_error']}")
            print(f"  next attempt: {row['next_attempt_at'] or '-'}")
        if row["owner"]:
            print(f"  fetched by: {row['owner']}")
        for entry in row["skipped"]:
            print(f"  left on server (too large): UID {entry['uid']}, {entry['size']} bytes")
    return 0


def _inbox(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(_inbox_async(config, args))


async def _inbox_async(config: Config, args: argparse.Namespace) -> int:
    db = create_database(config.database, pool=False)
    try:
        if args.action == "retry":
            if not args.ids and not args.all:
                print("give inbox ids or --all", file=sys.stderr)
                return EXIT_USAGE
            count = await inbox_repo.retry(db, None if args.all else args.ids)
            print(f"{count} message(s) re-queued")
            return 0
        async with db.connect() as conn:
            if args.action == "show":
                row = (await conn.execute(select(inbox).where(inbox.c.id == args.id))).first()
                if row is None:
                    print(f"no inbox row {args.id}", file=sys.stderr)
                    return 1
                return _print_row(row._asdict(), raw_only=args.raw)
            query = select(
                inbox.c.id, inbox.c.state, inbox.c.source, inbox.c.recipient,
                inbox.c.message_id, inbox.c.attempts, inbox.c.received_at, inbox.c.ticket_id,
                inbox.c.last_error,
            ).order_by(inbox.c.id.desc()).limit(args.limit)  # fmt: skip
            if args.state != "all":
                query = query.where(inbox.c.state == args.state)
            rows = [r._asdict() for r in await conn.execute(query)]
        _print_list(rows, as_json=args.json)
        return 0
    finally:
        await db.close()


def _print_list(rows: list[dict[str, object]], *, as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
        return
    print(
        f"{'ID':>8}  {'STATE':<11}  {'SRC':<5}  {'TRIES':>5}  {'TICKET':>7}  RECIPIENT / MESSAGE-ID"
    )
    for r in rows:
        error = str(r["last_error"] or "").strip().splitlines()
        print(
            f"{r['id']:>8}  {r['state']:<11}  {r['source']!s:<5}  {r['attempts']:>5}  "
            f"{r['ticket_id'] or '-'!s:>7}  {r['recipient'] or '-'} {r['message_id']}"
        )
        if error:
            print(f"{'':>8}  error: {error[0][:160]}")


def _print_row(row: dict[str, object], *, raw_only: bool) -> int:
    raw = row.pop("raw")
    if raw_only:
        if raw is None:
            print("the raw message was moved to the article (see ticket_id/article_id)",
                  file=sys.stderr)  # fmt: skip
            return 1
        assert isinstance(raw, bytes)
        sys.stdout.buffer.write(raw)
        return 0
    trace = row.pop("trace")
    error = row.pop("last_error")
    for key, value in row.items():
        print(f"{key}: {value}")
    print(f"raw: {'kept in inbox' if raw is not None else 'stored with the article'}")
    if trace:
        print("trace:")
        print(json.dumps(json.loads(str(trace)), indent=2, ensure_ascii=False))
    if error:
        print("error:")
        print(error)
    return 0


def _parse(config: Config, args: argparse.Namespace) -> int:
    """Print each file's parsed record, streaming; exit 1 if any file could not be read."""
    failed = False
    records = _parse_files(args.files, config)
    if args.json and len(args.files) > 1:
        # A JSON list written element by element, so a thousand files start printing at once.
        print("[")
        for index, record in enumerate(records):
            failed = failed or "error" in record
            text = json.dumps(record, indent=2, ensure_ascii=False)
            print(("" if index == 0 else ",\n") + _indented(text), end="", flush=True)
        print("\n]")
        return 1 if failed else 0
    for index, record in enumerate(records):
        failed = failed or "error" in record
        if args.json:
            print(json.dumps(record, indent=2, ensure_ascii=False))
        elif args.jsonl:
            print(json.dumps(record, ensure_ascii=False, separators=(",", ":")), flush=True)
        else:
            print(("\n" if index else "") + _human(record), flush=True)
    return 1 if failed else 0


def _parse_files(files: Sequence[str], config: Config) -> Iterator[dict[str, Any]]:
    limits = config.parser.limits()
    for name in files:
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            yield {"file": name, "error": exc.strerror or str(exc)}
            continue
        try:
            yield {"file": name, **_parsed_record(parse_mail(raw, limits))}
        except Exception as exc:  # parse_mail never raises; a bug must not stop the others.
            yield {"file": name, "error": f"{type(exc).__name__}: {exc}"}


def _parsed_record(mail: ParsedMail) -> dict[str, Any]:
    return {
        "subject": mail.subject,
        "from": mail.from_,
        "to": mail.to,
        "cc": mail.cc,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": list(mail.references),
        "date": mail.date.isoformat() if mail.date else None,
        "body_text": mail.body,
        "has_html": mail.html is not None,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.content),
                "inline": a.disposition == "inline",
                "content_id": a.content_id,
                **({"text": a.text} if a.text else {}),
            }
            for a in mail.attachments
        ],
        "is_bounce": mail.is_bounce,
        "bounce": asdict(mail.bounce) if mail.bounce else None,
        "is_auto_reply": mail.is_auto_reply,
        "is_out_of_office": mail.is_out_of_office,
        "is_list": mail.is_list,
        "loop": mail.loop,
        "warnings": list(mail.warnings),
    }


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _human(record: dict[str, Any]) -> str:
    lines = [f"== {record['file']}"]
    if "error" in record:
        return "\n".join([*lines, f"error: {record['error']}"])
    for key in ("subject", "from", "to", "cc", "message_id", "in_reply_to", "date"):
        lines.append(f"{key}: {record[key] or '-'}")
    lines.append(f"references: {' '.join(record['references']) or '-'}")
    flags = ("has_html", "is_bounce", "is_auto_reply", "is_out_of_office", "is_list", "loop")
    lines.append("flags: " + (", ".join(flag for flag in flags if record[flag]) or "-"))
    bounce = record["bounce"]
    if bounce:
        kind = "permanent" if bounce["permanent"] else "temporary"
        lines.append(
            f"bounce: {bounce['status'] or '?'} {kind} {bounce['recipient'] or '?'} "
            f"(original {bounce['original_message_id'] or '?'}, {bounce['format']})"
        )
    for number, a in enumerate(record["attachments"], start=1):
        details = [a["content_type"], f"{a['size']} bytes", "inline" if a["inline"] else ""]
        details.append(a["content_id"])
        lines.append(f"attachment {number}: {a['filename']} ({', '.join(filter(None, details))})")
    lines.extend(f"warning: {warning}" for warning in record["warnings"])
    lines.extend(["", record["body_text"].rstrip("\n")])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
