"""`pytrs inbox list|show|retry|discard|replace|edit`: the inbound queue and the quarantine.

`replace` and `edit` put a corrected copy of a quarantined mail back in the queue, the mail as
received kept with the row (`inbox_admin.replace`); `edit` runs the operator's editor on a
temporary copy, with no database connection open while the editor runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytrs.commands.database import opened
from pytrs.commands.failures import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CommandError
from pytrs.commands.output import fit, print_json
from pytrs.config import Config
from pytrs.gateway.pipe import check_input
from pytrs.postmaster import inbox_view
from pytrs.schema import inbox_admin
from pytrs.schema.inbox_repo import DISCARDED, QUARANTINED
from pytrs.vocabulary import znuny

# Column widths of `inbox list`: long values are cut so that the columns never shift.
_COLUMNS = (("ID", 8), ("STATE", 11), ("SRC", 5), ("TRIES", 5), ("TICKET", 16), ("FROM", 30))


def run(config: Config, args: argparse.Namespace) -> int:
    if args.action == "retry" and bool(args.ids) == args.all:
        raise CommandError("inbox retry: give inbox ids or --all (not both)", EXIT_USAGE)
    if args.action == "discard":
        args.reason, problem = inbox_view.discard_reason(args.reason)
        if problem:
            raise CommandError(f"inbox {problem}", EXIT_USAGE)
    if args.action == "replace":
        return _replace(config, args.id, _read_mail(args.file, f"inbox replace {args.id}"))
    if args.action == "edit":
        return _edit(config, args.id)
    return asyncio.run(_inbox_async(config, args))


async def _inbox_async(config: Config, args: argparse.Namespace) -> int:
    async with opened(config) as db:
        if args.action == "retry":
            before = await inbox_admin.requeue(db, None if args.all else args.ids)
            return _report_retry(before, args.ids)
        if args.action == "discard":
            before = await inbox_admin.discard(db, args.ids, args.reason, znuny.USER_ROOT)
            return _report(before, args.ids, "discarded", "nothing to discard")
        async with db.connect() as conn:
            if args.action == "show":
                row = await inbox_admin.row(conn, args.id)
                if row is None:
                    raise CommandError(f"inbox {args.id}: no such row")
                if args.original:
                    return _print_original(row, await inbox_admin.original_raw(conn, args.id))
                if args.raw:
                    return _print_raw(row, await _article_raw(conn, row))
                _print_row(row)
                return EXIT_OK
            rows = await inbox_view.listing(conn, args.state, args.limit)
    if not print_json(rows, args):
        _print_list(rows)
    return EXIT_OK


def _report_retry(before: dict[int, str], ids: list[int]) -> int:
    return _report(before, ids, "re-queued", "nothing to retry")


def _report(before: dict[int, str], ids: list[int], done: str, nothing: str) -> int:
    """One line on stderr per named row that was not quarantined, then the count changed."""
    refused = False
    for row_id in dict.fromkeys(ids):
        state = before.get(row_id)
        if state != QUARANTINED:
            refused = True
            why = f"is {state}, not quarantined: {nothing}" if state else "no such row"
            print(f"inbox {row_id}: {why}", file=sys.stderr)
    count = sum(1 for state in before.values() if state == QUARANTINED)
    print(f"{count} message(s) {done}")
    return EXIT_FAILED if refused else EXIT_OK


async def _article_raw(conn: Any, row: dict[str, Any]) -> bytes | None:
    if row["raw"] is not None or not row["article_id"]:
        return None
    return await inbox_admin.article_raw(conn, row["article_id"])


def _print_raw(row: dict[str, Any], from_article: bytes | None) -> int:
    # A processed row gives its raw copy to the article (article_data_mime_plain).
    raw = row["raw"] if row["raw"] is not None else from_article
    if raw is None:
        raise CommandError(f"inbox {row['id']}: no raw copy, neither in the row nor in an article")
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _print_original(row: dict[str, Any], raw: bytes | None) -> int:
    if raw is None:
        raise CommandError(f"inbox {row['id']}: never replaced, no original apart from its mail")
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    return EXIT_OK


def _read_mail(path: str, what: str) -> bytes:
    """The corrected mail of `replace` (a file, or stdin for "-")."""
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"{what}: cannot read {path}: {exc.strerror or exc}") from exc


def _replace(config: Config, row_id: int, raw: bytes) -> int:
    problem = check_input(raw, config.smtp.max_message_size)
    if problem:
        raise CommandError(f"inbox replace {row_id}: not a mail to queue: {problem}")
    before = asyncio.run(_replace_async(config, row_id, raw))
    if before != QUARANTINED:
        why = f"is {before}, not quarantined: nothing to replace" if before else "no such row"
        raise CommandError(f"inbox {row_id}: {why}")
    print(f"inbox {row_id}: replaced and re-queued (the original is kept)")
    return EXIT_OK


async def _replace_async(config: Config, row_id: int, raw: bytes) -> str | None:
    async with opened(config) as db:
        return await inbox_admin.replace(db, row_id, raw, znuny.USER_ROOT)


def _edit(config: Config, row_id: int) -> int:
    """Edit a copy of the quarantined mail in $VISUAL or $EDITOR; a changed, non-empty copy
    replaces the mail as `replace` does."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor or not editor.strip():
        raise CommandError("inbox edit: set VISUAL or EDITOR to the editor to run", EXIT_USAGE)
    raw = asyncio.run(_quarantined_raw(config, row_id))
    handle, name = tempfile.mkstemp(prefix=f"pytrs-inbox-{row_id}-", suffix=".eml")
    try:
        with os.fdopen(handle, "wb") as copy:
            copy.write(raw)
        _run_editor(editor, name)
        edited = Path(name).read_bytes()
    finally:
        Path(name).unlink(missing_ok=True)
    if edited == raw:
        print(f"inbox {row_id}: nothing changed, not re-queued")
        return EXIT_OK
    if not edited.strip():
        raise CommandError(f"inbox edit {row_id}: the edited mail is empty: not re-queued")
    return _replace(config, row_id, edited)


async def _quarantined_raw(config: Config, row_id: int) -> bytes:
    async with opened(config) as db, db.connect() as conn:
        row = await inbox_admin.row(conn, row_id)
    if row is None:
        raise CommandError(f"inbox {row_id}: no such row")
    if row["state"] != QUARANTINED or row["raw"] is None:
        raise CommandError(f"inbox {row_id}: is {row['state']}, not quarantined: nothing to edit")
    return bytes(row["raw"])


def _run_editor(editor: str, path: str) -> None:
    # As git does: the variable may hold options ("code --wait"), so it is split, not run whole.
    command = [*shlex.split(editor), path]
    try:
        done = subprocess.run(command, check=False)
    except OSError as exc:
        raise CommandError(f"inbox edit: cannot run {command[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise CommandError(
            f"inbox edit: {command[0]} exited with status {done.returncode}: not re-queued"
        )


def _print_list(rows: list[dict[str, Any]]) -> None:
    print("  ".join(fit(title, width) for title, width in _COLUMNS) + "  SUBJECT")
    for r in rows:
        ticket = r["tn"] or (f"id {r['ticket_id']}" if r["ticket_id"] else "-")
        cells = (r["id"], r["state"], r["source"], r["attempts"], ticket, r["from"])
        line = "  ".join(fit(cell, width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
        print(f"{line}  {fit(r['subject'], 60).rstrip()}")
        error = str(r["last_error"] or "").strip().splitlines()
        if error:
            print(f"{'':>8}  error: {error[0][:160]}")


_DISCARD_COLUMNS = ("discard_reason", "discarded_by", "discarded_at", "discarded_by_login")
_REPLACE_COLUMNS = ("replaced_by", "replaced_at", "replaced_by_login", "original_size")


def _print_row(row: dict[str, Any]) -> None:
    raw, trace, error = row.pop("raw"), row.pop("trace"), row.pop("last_error")
    discard = {key: row.pop(key) for key in _DISCARD_COLUMNS}
    replaced = {key: row.pop(key) for key in _REPLACE_COLUMNS}
    for key, value in row.items():
        print(f"{key}: {value}")
    if row["state"] == DISCARDED:
        by = discard["discarded_by_login"] or discard["discarded_by"] or "-"
        print(f"discarded: {discard['discarded_at'] or '-'} by {by}")
        print(f"discard reason: {discard['discard_reason'] or '-'}")
    if replaced["original_size"] is not None:
        by = replaced["replaced_by_login"] or replaced["replaced_by"] or "-"
        print(f"replaced: {replaced['replaced_at'] or '-'} by {by} (a corrected copy)")
        print(
            f"original: {replaced['original_size']} bytes kept "
            f"(pytrs inbox show {row['id']} --original)"
        )
    print(f"raw: {'kept in inbox' if raw is not None else 'stored with the article'}")
    if trace:
        print("trace:")
        print(json.dumps(json.loads(str(trace)), indent=2, ensure_ascii=False))
    if error:
        print("error:")
        print(error)
